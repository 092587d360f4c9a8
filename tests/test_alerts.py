"""tasks.alerts and flows.notify.send_alerts against a real SMTP server (aiosmtpd on 127.0.0.1).

The digest is read back the way the acceptance harness reads it (run_eval's
`Mailbox.lines`, `amounts_in` and `norm`), so "one line announces each change" is
tested as it is judged.
"""
from __future__ import annotations

import collections
import datetime as dt
import email
import email.utils
import email.policy
import importlib.util
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Answer, Hold, SmtpServer, free_port

from flows.notify import detect_changes, send_alerts
from newsmon.errors import AlertError
from newsmon.settings import AlertSettings, Settings, SmtpSettings, WarehouseSettings
from tasks.alerts import SmtpUnavailableError, compose_digest, digest_message_id, send_message
from tasks.changes import Change
from warehouse import Warehouse
from warehouse import outbox as ob
from tests.test_changes import B, add_articles, day, pledge, pos, url

ROOT = Path(__file__).resolve().parents[1]
RUN_EVAL = ROOT.parent / "shared" / "eval" / "run_eval.py"


# -- the acceptance harness's reading of a mailbox ---------------------------------------
@pytest.fixture(scope="module")
def run_eval():
    if not RUN_EVAL.exists():
        pytest.skip(f"acceptance harness not found at {RUN_EVAL}")
    spec = importlib.util.spec_from_file_location("run_eval", RUN_EVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def harness_lines(run_eval, messages: list[bytes]) -> list[list[str]]:
    box = run_eval.Mailbox.__new__(run_eval.Mailbox)  # no server: only its reading of messages
    box.messages = list(messages)
    return box.lines()


def announcing_lines(run_eval, lines: list[list[str]], change: dict) -> list[str]:
    """The lines that announce `change` as run_eval.score() decides it (group, subject, old before new)."""
    norm = run_eval.norm
    group, subject = norm(change["actor_group"]), norm(change["subject"]).replace("_", " ")
    found = []
    for line in (l for msg in lines for l in msg):
        if group not in line or subject not in line:
            continue
        if change["kind"] == "position":
            old = [m.start() for m in re.finditer(rf"\b{re.escape(norm(change['old_value']))}\b", line)]
            new = [m.start() for m in re.finditer(rf"\b{re.escape(norm(change['new_value']))}\b", line)]
            ok = bool(old and new and min(old) < max(new))
        else:
            xs = run_eval.amounts_in(line)
            close = lambda x, y: abs(x - y) <= 0.01 * max(y, 1.0)  # noqa: E731
            ok = any(close(a, change["old_amount"]) and any(close(b, change["new_amount"]) for b in xs[i + 1:])
                     for i, a in enumerate(xs))
        if ok:
            found.append(line)
    return found


# -- fixtures: a warehouse with claims ------------------------------------------------------
RECIPIENT = "analyst@example.org"


@pytest.fixture
def settings(warehouse: Warehouse, smtp: SmtpServer) -> Settings:
    return Settings(warehouse=WarehouseSettings(path=warehouse.path),
                    smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="newsmon@localhost", timeout=5),
                    alerts=AlertSettings(recipients=[RECIPIENT]))


TALKS_OLD = "France rules out any direct talks with Vladimir Putin while the war goes on."
TALKS_NEW = "France has indicated openness to direct talks with Russian leadership under conditions."
AID_NEW = ("Germany plans to double its military aid for Ukraine next year, raising the amount earmarked in "
           "its budget from €4 billion to €8 billion, the defence minister said on Sunday.")


def seed(wh: Warehouse) -> None:
    """Two changes: France's stance on direct talks, and Germany's aid to Ukraine (a revision)."""
    talks_old = dict(pos("talks-1", 0, "oppose"), evidence=TALKS_OLD)
    talks_new = dict(pos("talks-2", 40, "conditional"), evidence=TALKS_NEW)
    aid_old = dict(pledge("aid-1", 10, 4 * B), evidence="Germany pledged €4 billion to Ukraine for 2024.")
    aid_new = dict(pledge("aid-2", 50, 8 * B, previous=4 * B), evidence=AID_NEW)
    add_articles(wh, [talks_old, talks_new], [aid_old, aid_new])


def stored_changes(wh: Warehouse) -> list[dict]:
    return wh.read("SELECT * FROM changes ORDER BY new_published_at")


def a_change(**overrides) -> Change:
    values = dict(change_id="c1", kind="position", actor_group="France", subject="direct_talks_with_putin",
                  old_value="oppose", new_value="conditional", new_claim_id="n1", new_url=url("new"),
                  old_claim_id="o1", old_url=url("old"), old_published_at=day(0), new_published_at=day(40),
                  old_evidence=TALKS_OLD, new_evidence=TALKS_NEW, old_title="Old title", new_title="New title")
    values.update(overrides)
    return Change(**values)


def bodies(msg: email.message.EmailMessage) -> tuple[str, str]:
    return (msg.get_body(preferencelist=("plain",)).get_content(),
            msg.get_body(preferencelist=("html",)).get_content())


# -- the digest ------------------------------------------------------------------------------
def test_alerts_digest_content_and_headers():
    aid = a_change(change_id="c2", kind="aid", actor_group="Germany", subject="Ukraine", old_value="€4bn",
                   new_value="€8bn", old_amount=4 * B, new_amount=8 * B, currency="EUR", old_currency="EUR",
                   relative_change=1.0, old_url=url("aid-1"), new_url=url("aid-2"), old_published_at=day(10),
                   new_published_at=day(50),
                   old_evidence="Germany pledged €4 billion.", new_evidence=AID_NEW)
    msg = compose_digest(RECIPIENT, [aid, a_change()], "newsmon@localhost")
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"] == RECIPIENT and msg["From"] == "newsmon@localhost" and msg["Date"]
    assert msg["Message-ID"] == digest_message_id(RECIPIENT, ["c2", "c1"])
    assert re.fullmatch(r"<[0-9a-f]{40}@newsmon>", msg["Message-ID"])
    # same changes, same message; other changes or a resend, another one
    assert compose_digest(RECIPIENT, [a_change(), aid], "x@y")["Message-ID"] == msg["Message-ID"]
    assert compose_digest(RECIPIENT, [a_change()], "x@y")["Message-ID"] != msg["Message-ID"]
    assert compose_digest(RECIPIENT, [aid, a_change()], "x@y", resends=1)["Message-ID"] != msg["Message-ID"]
    # the subject names the biggest change (the doubled aid outweighs a move to conditional)
    assert msg["Subject"] == "Germany aid to Ukraine: €4bn → €8bn (+100%) (and 1 more change)"
    plain, html = bodies(msg)
    for text in (plain, html):
        for link in (url("old"), url("new"), url("aid-1"), url("aid-2")):
            assert link in text
    unwrapped = " ".join(line.strip().removeprefix("> ") for line in plain.splitlines()).replace("*", "")
    html_text = re.sub(r"</?strong>", "", html)
    for sentence in (TALKS_OLD, TALKS_NEW, AID_NEW):
        assert f"\u201c{sentence}\u201d" in unwrapped
        assert sentence in html_text
    assert "*France* rules out" in plain and "<strong>France</strong> rules out" in html  # key words stand out
    # publication order: France (day 40) before Germany (day 50)
    assert plain.index("France |") < plain.index("Germany |")
    assert "2024-01-01 → 2024-02-10" in plain


def test_alerts_subject_is_cut_sensibly():
    many = [a_change(change_id=f"c{i}", actor_group=f"Country number {i}") for i in range(12)]
    subject = compose_digest(RECIPIENT, many, "x@y")["Subject"]
    # equal weight and date: the last in publication order (url, then id) is named
    assert subject == "Country number 9 on direct talks with putin: oppose → conditional (and 11 more changes)"
    long = [a_change(change_id="x", actor_group="A" * 300)] + many
    subject = compose_digest(RECIPIENT, long, "x@y")["Subject"]
    assert len(subject) <= 140 and subject.endswith("… (and 12 more changes)")


def test_alerts_article_text_is_escaped_and_kept_out_of_headers():
    evil = a_change(actor_group="France\r\nBcc: victim@example.org", old_title="<script>alert(1)</script>\r\nX",
                    new_evidence="Paris <script>alert('x')</script> said\r\nSubject: injected",
                    new_url="javascript:alert(1)")
    msg = compose_digest(RECIPIENT, [evil], "newsmon@localhost\r\nBcc: x@example.org")
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None and "\n" not in parsed["Subject"] and "\r" not in parsed["From"]
    assert parsed["Subject"].startswith("France Bcc: victim@example.org on direct talks")
    header_block = raw.split(b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n", 1)[0]
    assert b"Subject: injected" not in header_block
    plain, html = bodies(parsed)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    # the CR/LF in the evidence does not start a line of its own in the plain part
    assert not any(line.startswith("Subject: injected") for line in plain.splitlines())


# -- sending through the real server ---------------------------------------------------------
def test_alerts_one_line_announces_each_change(settings, warehouse, smtp, run_eval):
    seed(warehouse)
    assert detect_changes.fn(settings, warehouse, "run-1")["new"] == 2
    counts = send_alerts.fn(settings, warehouse, "run-1")
    assert (counts["messages"], counts["sent_alerts"]) == (1, 2)
    assert smtp.envelopes == [("newsmon@localhost", [RECIPIENT])]
    lines = harness_lines(run_eval, smtp.messages)
    for change in stored_changes(warehouse):
        assert len(announcing_lines(run_eval, lines, change)) == 1, change
    assert {r["status"] for r in warehouse.read("SELECT status FROM alerts")} == {"sent"}


def test_alerts_nothing_is_sent_twice_across_runs(settings, warehouse, smtp):
    seed(warehouse)
    for run in ("run-1", "run-2", "run-3"):
        detect_changes.fn(settings, warehouse, run)
        send_alerts.fn(settings, warehouse, run)
    assert len(smtp.messages) == 1
    # a new change later: one new message, naming only the new change
    add_articles(warehouse, [pos("talks-3", 60, "support")])
    detect_changes.fn(settings, warehouse, "run-4")
    assert send_alerts.fn(settings, warehouse, "run-4")["sent_alerts"] == 1
    send_alerts.fn(settings, warehouse, "run-5")
    msgs = smtp.parsed()
    assert len(msgs) == 2
    assert msgs[1]["Subject"] == "France on direct talks with putin: conditional → support"


def test_alerts_smtp_down_then_up(settings, warehouse, smtp):
    seed(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    smtp.down()
    counts = send_alerts.fn(settings, warehouse, "run-1")  # completes: no exception
    assert counts["failed"] == 2 and counts["due"] == 2
    rows = warehouse.read("SELECT status, attempts, last_error, message_id FROM alerts")
    assert all(r["status"] == "due" and r["attempts"] == 1 and r["message_id"] is None for r in rows)
    assert all(f"127.0.0.1:{smtp.port}" in r["last_error"] for r in rows)
    smtp.up()
    detect_changes.fn(settings, warehouse, "run-2")  # nothing new
    assert send_alerts.fn(settings, warehouse, "run-2")["messages"] == 1
    assert send_alerts.fn(settings, warehouse, "run-3") == {}
    assert len(smtp.messages) == 1
    assert {(r["status"], r["last_error"]) for r in warehouse.read("SELECT status, last_error FROM alerts")} == {
        ("sent", None)}


def test_alerts_without_smtp_stay_due(settings, warehouse, smtp):
    seed(warehouse)
    no_smtp = settings.model_copy(update={"smtp": None})
    detect_changes.fn(no_smtp, warehouse, "run-1")
    assert send_alerts.fn(no_smtp, warehouse, "run-1") == {"due": 2, "smtp_not_configured": 1}
    assert smtp.messages == []
    assert send_alerts.fn(settings, warehouse, "run-2")["messages"] == 1


def send_then_die_before_marking(settings: Settings, warehouse: Warehouse, monkeypatch) -> None:
    """send_alerts of run-1, the process dying right after the server took the message (before it is marked sent)."""
    def crash(*args, **kwargs):
        raise SystemExit("killed after the send")

    with monkeypatch.context() as m:
        m.setattr(ob, "mark_sent", crash)
        with pytest.raises(SystemExit):
            send_alerts.fn(settings, warehouse, "run-1")


def test_alerts_crash_between_send_and_mark_resends_same_message(settings, warehouse, smtp, monkeypatch):
    seed(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")

    send_then_die_before_marking(settings, warehouse, monkeypatch)
    assert len(smtp.messages) == 1
    [first] = smtp.parsed()
    assert {(r["status"], r["message_id"]) for r in warehouse.read("SELECT status, message_id FROM alerts")} == {
        ("sending", first["Message-ID"])}

    # a run right away leaves it: another run might be sending it at this moment
    assert send_alerts.fn(settings, warehouse, "run-2") == {}
    # once the attempt is stale, the same message (same Message-ID, same changes) goes again
    add_articles(warehouse, [pos("talks-3", 60, "support")])  # a new change must not join it
    detect_changes.fn(settings, warehouse, "run-3")
    counts = send_alerts.fn(settings, warehouse, "run-3", stale_after=0)
    assert (counts["resent_messages"], counts["messages"]) == (1, 1)
    first_again, newer = smtp.parsed()[1:]
    assert first_again["Message-ID"] == first["Message-ID"]
    assert bodies(first_again) == bodies(first) and first_again["Subject"] == first["Subject"]
    assert newer["Message-ID"] != first["Message-ID"] and "(and" not in newer["Subject"]
    assert {r["status"] for r in warehouse.read("SELECT status FROM alerts")} == {"sent"}


def test_alerts_late_article_does_not_announce_a_change_twice(settings, warehouse, smtp, run_eval):
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-1")
    send_alerts.fn(settings, warehouse, "run-1")
    # February's article arrives late: the same change (support → oppose), dated earlier
    add_articles(warehouse, [pos("feb", 30, "oppose")])
    counts = detect_changes.fn(settings, warehouse, "run-2")
    assert (counts["new"], counts["retracted"], counts["already_announced"]) == (1, 1, 1)
    assert send_alerts.fn(settings, warehouse, "run-2") == {}
    [change] = stored_changes(warehouse)
    assert change["new_url"] == url("feb")
    [alert] = warehouse.read("SELECT status, announced_as FROM alerts WHERE change_id = ?", [change["change_id"]])
    assert alert["status"] == "sent" and alert["announced_as"]
    assert len(announcing_lines(run_eval, harness_lines(run_eval, smtp.messages), change)) == 1


def test_alerts_retracted_before_sending_is_dropped(settings, warehouse, smtp):
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-1")
    with warehouse.transaction() as con:  # re-mined: March's article says nothing after all
        con.execute("DELETE FROM position_claims WHERE url = ?", [url("mar")])
    detect_changes.fn(settings, warehouse, "run-2")
    assert send_alerts.fn(settings, warehouse, "run-2") == {}
    assert smtp.messages == []
    assert warehouse.read("SELECT status FROM alerts") == [dict(status="retracted")]


def test_alerts_one_digest_per_recipient(settings, warehouse, smtp):
    two = settings.model_copy(update={"alerts": AlertSettings(recipients=[
        RECIPIENT, dict(address="aid-desk@example.org", kinds=["aid"])])})
    seed(warehouse)
    detect_changes.fn(two, warehouse, "run-1")
    assert send_alerts.fn(two, warehouse, "run-1")["messages"] == 2
    by_rcpt = {rcpts[0]: msg for (_, rcpts), msg in zip(smtp.envelopes, smtp.parsed())}
    assert by_rcpt[RECIPIENT]["Subject"].endswith("(and 1 more change)")
    assert by_rcpt["aid-desk@example.org"]["Subject"] == "Germany aid to Ukraine: €4bn → €8bn (+100%)"


def test_alerts_send_message_errors_are_clean(smtp):
    port = smtp.port
    smtp.down()
    msg = compose_digest(RECIPIENT, [a_change()], "newsmon@localhost")
    t0 = time.monotonic()
    with pytest.raises(SmtpUnavailableError) as err:
        send_message(SmtpSettings(host="127.0.0.1", port=port, timeout=2), msg)
    assert time.monotonic() - t0 < 5
    assert isinstance(err.value, AlertError)
    assert str(err.value).startswith(f"cannot use SMTP server 127.0.0.1:{port}")
    smtp.up()
    with pytest.raises(SmtpUnavailableError, match="needs a password"):
        send_message(SmtpSettings(host="127.0.0.1", port=port, username="newsmon",
                                  password_env="NEWSMON_TEST_NO_SUCH_VAR"), msg)


# -- the `newsmon alerts` commands ---------------------------------------------------------
@pytest.fixture
def cli(tmp_path: Path, warehouse: Warehouse, smtp: SmtpServer):
    """Run `newsmon alerts ...` against a config for this test's warehouse and SMTP server."""
    import typer
    from typer.testing import CliRunner

    from newsmon.alerts_cli import alerts_app

    app = typer.Typer()
    app.add_typer(alerts_app, name="alerts")
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "{warehouse.path}"\n\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
                      f'timeout = 5\n\n[alerts]\nrecipients = ["{RECIPIENT}"]\n')

    def run(*args: str):
        return CliRunner().invoke(app, ["alerts", *args, "--config", str(config)])
    return run


def test_alerts_cli_commands_are_documented():
    from newsmon.alerts_cli import alerts_app

    for command in alerts_app.registered_commands:
        doc = command.callback.__doc__ or ""
        assert doc.strip().splitlines()[-1].strip().startswith("Example: newsmon alerts "), command.name


def test_alerts_cli_list_send_resend(cli, settings, warehouse, smtp):
    seed(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    listed = cli("list", "--status", "due", "--max-width", "0")
    assert listed.exit_code == 0, listed.output
    assert "(2 rows)" in listed.output and "direct_talks_with_putin" in listed.output

    sent = cli("send")
    assert sent.exit_code == 0, sent.output
    assert "messages=1" in sent.output and len(smtp.messages) == 1
    assert "(0 rows)" in cli("list", "--status", "due").output

    [change] = warehouse.read("SELECT change_id FROM changes WHERE kind = 'aid'")
    requeued = cli("resend", change["change_id"][:10])
    assert requeued.exit_code == 0, requeued.output
    assert "queued 1 alert" in requeued.output
    assert "messages=1" in cli("send").output
    first, again = smtp.parsed()
    assert again["Subject"] == "[Resent] Germany aid to Ukraine: €4bn → €8bn (+100%)"  # marked as a resend
    assert again["X-Newsmon-Resend"] == "1" and first["X-Newsmon-Resend"] is None
    assert again["Message-ID"] != first["Message-ID"]  # a deliberate resend is a message of its own
    assert "nothing was due" in cli("send").output

    other = cli("resend", change["change_id"], "--recipient", "desk@example.org")  # not a configured recipient
    assert other.exit_code != 0 and "not in alerts.recipients" in str(other.exception)
    forced = cli("resend", change["change_id"], "--recipient", "desk@example.org", "--force")
    assert forced.exit_code == 0 and "queued 1 alert" in forced.output
    hostile = cli("resend", change["change_id"], "--recipient", "grp:x@y;@example.org", "--force")
    assert hostile.exit_code != 0 and "is a group" in str(hostile.exception)
    missing = cli("resend", "ffffffffff")
    assert missing.exit_code != 0 and "no change with id" in str(missing.exception)


# -- corrections of alerts for changes retracted after they were sent ------------------------
ANALYSTS = [RECIPIENT, "desk@example.org"]


def _site_article(title: str, published: str, sentence: str) -> bytes:
    filler = ("<p>The statement came during a week of intense diplomatic activity in several European capitals, "
              "where officials met to discuss the coming winter and the state of the economy.</p>"
              "<p>Observers noted that the wording had been prepared carefully and circulated to embassies "
              "before it was made public on the ministry's website on the same day.</p>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="article:published_time" content="{published}"></head><body><main><article>'
            f"<h1>{title}</h1><p>{sentence}</p>{filler}</article></main></body></html>").encode()


def _site_feed(site, listed: list[tuple[str, str, str]]) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{site.url('/' + slug + '.html')}</link><guid>{slug}</guid>"
        f"<pubDate>{published}</pubDate></item>" for slug, title, published in listed)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
            f"<link>{site.url('/')}</link><description>test</description>{items}</channel></rss>").encode()


def _run_pipeline(settings: Settings, wh: Warehouse, run_id: str) -> dict:
    from flows import stages

    return {"feeds": stages.poll_feeds.fn(settings, wh, run_id), "pages": stages.fetch_pages.fn(settings, wh, run_id),
            "articles": stages.extract_articles.fn(settings, wh, run_id),
            "claims": stages.mine_articles.fn(settings, wh, run_id),
            "changes": detect_changes.fn(settings, wh, run_id), "alerts": send_alerts.fn(settings, wh, run_id)}


def by_recipient(smtp: SmtpServer) -> dict[str, list[email.message.EmailMessage]]:
    out: dict[str, list] = {}
    for (_, rcpts), msg in zip(smtp.envelopes, smtp.parsed()):
        for r in rcpts:
            out.setdefault(r, []).append(msg)
    return out


def test_alerts_change_emailed_then_retracted_by_late_evidence_gets_one_threaded_correction(
        site, warehouse, smtp):
    """Harness-style: a feed on the local server, the real stages (fetch, extract, spaCy mining),
    a real SMTP server. January's article opposes direct talks, March's supports them: that change
    is emailed. February's article (conditional) arrives late: the emailed change is retracted and
    each recipient gets exactly one correction, threaded to the announcement; re-runs send nothing."""
    from newsmon.settings import FeedSettings, FetchSettings

    pages = {
        "jan": ("A statement from Paris", "2025-01-10T09:00:00Z", "Mon, 10 Jan 2025 09:00:00 +0000",
                "France rules out any direct talks with Vladimir Putin while the war goes on."),
        "feb": ("A second note from Paris", "2025-02-10T09:00:00Z", "Mon, 10 Feb 2025 09:00:00 +0000",
                "France has indicated openness to direct talks with Russian leadership under conditions."),
        "mar": ("A third word from Paris", "2025-03-10T09:00:00Z", "Mon, 10 Mar 2025 09:00:00 +0000",
                "France now supports direct talks with Vladimir Putin, the foreign minister said."),
    }
    listed = ["jan", "mar"]
    for slug, (title, iso, _, sentence) in pages.items():
        site.add(f"/{slug}.html", Answer(_site_article(title, iso, sentence),
                                         headers={"Content-Type": "text/html; charset=utf-8"}))
    site.add("/feed.xml", lambda req: Answer(_site_feed(site, [(s, pages[s][0], pages[s][2]) for s in listed]),
                                             headers={"Content-Type": "application/rss+xml"}))
    settings = Settings(warehouse=WarehouseSettings(path=warehouse.path),
                        fetch=FetchSettings(allow_private_networks=True, per_host_delay=0, retries=0),
                        feeds=[FeedSettings(name="wire", url=site.url("/feed.xml"))],
                        smtp=SmtpSettings(host="127.0.0.1", port=smtp.port, sender="newsmon@localhost", timeout=5),
                        alerts=AlertSettings(recipients=ANALYSTS))

    first = _run_pipeline(settings, warehouse, "run-1")
    assert first["alerts"]["messages"] == 2, first
    [announced] = stored_changes(warehouse)
    assert (announced["old_value"], announced["new_value"]) == ("oppose", "support")
    originals = {r: msgs[0] for r, msgs in by_recipient(smtp).items()}
    assert sorted(originals) == sorted(ANALYSTS)

    listed.insert(1, "feb")  # the late article: published in February, listed only now
    second = _run_pipeline(settings, warehouse, "run-2")
    assert second["changes"]["retracted"] == 1 and second["changes"]["corrections_queued"] == 2, second
    now_standing = stored_changes(warehouse)
    assert [(c["old_value"], c["new_value"]) for c in now_standing] == [("oppose", "conditional"),
                                                                         ("conditional", "support")]
    mail = by_recipient(smtp)
    for recipient in ANALYSTS:
        original, *later = mail[recipient]
        assert len(later) == 1, [m["Subject"] for m in later]  # exactly one correction, nothing else
        [correction] = later
        assert correction["In-Reply-To"] == original["Message-ID"]
        assert original["Message-ID"] in correction["References"].split()
        assert correction["X-Newsmon-Correction"] == original["Message-ID"]
        assert correction["Subject"].startswith("Correction to the alert of ")
        plain, html = bodies(correction)
        sent_on = email.utils.parsedate_to_datetime(original["Date"]).astimezone(dt.timezone.utc).date()
        flat = " ".join(plain.split())
        assert original["Message-ID"] in flat and sent_on.isoformat() in flat  # names the announcement
        assert "withdrawn: oppose → support" in plain
        # the changes that stand now are announced in the correction, each on one line
        for c in now_standing:
            assert sum(f"{c['old_value']} → {c['new_value']}" in line and "France |" in line
                       for line in plain.splitlines()) == 1, c
        assert original["Message-ID"].strip("<>") in html and "withdrawn" in html
    rows = warehouse.read("SELECT recipient, status, announced_message_id FROM alert_corrections ORDER BY 1")
    assert [(r["recipient"], r["status"]) for r in rows] == sorted((r, "sent") for r in ANALYSTS)
    assert {r["status"] for r in warehouse.read("SELECT status FROM alerts WHERE retracted_at IS NULL")} == {"sent"}

    before = len(smtp.messages)
    third = _run_pipeline(settings, warehouse, "run-3")
    assert third["alerts"] == {} and len(smtp.messages) == before
    assert send_alerts.fn(settings, warehouse, "run-4", stale_after=0) == {}
    assert len(smtp.messages) == before


def _announce_then_retract(settings, warehouse) -> None:
    """January supports, March opposes: emailed; then March's claim is re-mined away."""
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-1")
    assert send_alerts.fn(settings, warehouse, "run-1")["messages"] == 1
    with warehouse.transaction() as con:  # re-mined: March's article says nothing after all
        con.execute("DELETE FROM position_claims WHERE url = ?", [url("mar")])
    assert detect_changes.fn(settings, warehouse, "run-2")["corrections_queued"] == 1


def test_alerts_correction_without_a_replacement_says_nothing_stands(settings, warehouse, smtp, run_eval):
    _announce_then_retract(settings, warehouse)
    counts = send_alerts.fn(settings, warehouse, "run-2")
    assert counts["corrections"] == 1 and counts["sent_alerts"] == 1
    original, correction = smtp.parsed()
    assert correction["In-Reply-To"] == original["Message-ID"] == correction["References"]
    plain, _ = bodies(correction)
    assert "withdrawn: support → oppose" in plain and "No change on these subjects stands" in plain
    # the correction announces nothing: read as the harness reads mail, no line announces the
    # withdrawn change, and the one announcement stays the only one
    [withdrawn] = warehouse.read("SELECT * FROM change_log")
    assert announcing_lines(run_eval, harness_lines(run_eval, smtp.messages[1:]), withdrawn) == []
    assert len(announcing_lines(run_eval, harness_lines(run_eval, smtp.messages), withdrawn)) == 1
    assert send_alerts.fn(settings, warehouse, "run-3", stale_after=0) == {}
    assert len(smtp.messages) == 2


def test_alerts_cli_lists_corrections(cli, settings, warehouse, smtp):
    _announce_then_retract(settings, warehouse)
    listed = cli("list", "--corrections", "--status", "due", "--max-width", "0")
    assert listed.exit_code == 0, listed.output
    assert "(1 row" in listed.output and "direct_talks_with_putin" in listed.output and RECIPIENT in listed.output
    assert cli("send").exit_code == 0
    assert "(0 rows)" in cli("list", "--corrections", "--status", "due").output


def test_alerts_correction_waits_for_the_server_and_goes_once(settings, warehouse, smtp):
    _announce_then_retract(settings, warehouse)
    smtp.down()
    counts = send_alerts.fn(settings, warehouse, "run-2")
    assert counts["failed"] == 1 and counts["due"] == 1
    smtp.up()
    assert send_alerts.fn(settings, warehouse, "run-3")["corrections"] == 1
    assert send_alerts.fn(settings, warehouse, "run-4") == {}
    assert [m["Subject"].startswith("Correction") for m in smtp.parsed()] == [False, True]


def test_alerts_correction_crash_after_send_resends_the_same_correction(settings, warehouse, smtp, monkeypatch):
    _announce_then_retract(settings, warehouse)

    def crash(*args, **kwargs):
        raise SystemExit("killed after the send")

    with monkeypatch.context() as m:
        m.setattr(ob, "mark_sent", crash)
        with pytest.raises(SystemExit):
            send_alerts.fn(settings, warehouse, "run-2")
    assert send_alerts.fn(settings, warehouse, "run-3") == {}  # a concurrent run may be sending it
    assert send_alerts.fn(settings, warehouse, "run-4", stale_after=0)["resent_messages"] == 1
    _, first, again = smtp.parsed()
    assert again["Message-ID"] == first["Message-ID"] and again["In-Reply-To"] == first["In-Reply-To"]
    assert bodies(again) == bodies(first)
    assert send_alerts.fn(settings, warehouse, "run-5", stale_after=0) == {}
    assert warehouse.read("SELECT status FROM alert_corrections") == [dict(status="sent")]


def test_alerts_change_restored_before_its_correction_went_out_gets_none(settings, warehouse, smtp):
    _announce_then_retract(settings, warehouse)
    smtp.down()
    send_alerts.fn(settings, warehouse, "run-2")  # the correction could not go
    smtp.up()
    add_articles(warehouse, [pos("mar", 60, "oppose")])  # re-mined again: March says it after all
    assert detect_changes.fn(settings, warehouse, "run-3")["restored"] == 1
    assert send_alerts.fn(settings, warehouse, "run-3") == {}
    assert len(smtp.messages) == 1
    assert warehouse.read("SELECT status FROM alert_corrections") == [dict(status="cancelled")]


def test_alerts_change_retracted_while_unannounced_owes_no_correction(settings, warehouse, smtp):
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-1")
    with warehouse.transaction() as con:
        con.execute("DELETE FROM position_claims WHERE url = ?", [url("mar")])
    assert detect_changes.fn(settings, warehouse, "run-2")["corrections_queued"] == 0
    assert send_alerts.fn(settings, warehouse, "run-2") == {} and smtp.messages == []


# -- hostile addresses ----------------------------------------------------------------------
@pytest.mark.parametrize("address, why", [
    ("grp:x@y;@example.org", "is a group"),
    ("a@b@example.org", "has 2 '@' signs"),
    ("Analyst <analyst@example.org>", "without display name"),
    ("analyst@example.org, boss@example.org", "or a list"),
    ("analyst@", "not a host name"),
    ("@example.org", "before '@' is empty"),
    ("ana..lyst@example.org", "malformed"),
    ("analyst@exa_mple.org", "not a host name"),
])
def test_alerts_hostile_recipient_refused_at_config_validation(tmp_path, address, why):
    from newsmon.errors import ConfigError
    from newsmon.settings import load_settings

    config = tmp_path / "newsmon.toml"
    config.write_text('[alerts]\nrecipients = ["ok@example.org", ' + json_str(address) + ']\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    line = str(err.value)
    assert "\n" not in line and "alerts.recipients" in line and why in line, line
    sender = tmp_path / "sender.toml"
    sender.write_text('[smtp]\nsender = ' + json_str(address) + '\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="smtp.sender"):
        load_settings(sender)


def json_str(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)


def test_alerts_international_addresses_validate():
    from newsmon.settings import Recipient

    assert Recipient(address="analyst@bücher.example").address == "analyst@xn--bcher-kva.example"
    assert Recipient(address="jürgen@example.org").address == "jürgen@example.org"  # needs SMTPUTF8 to travel


def _outbox_recipient(warehouse: Warehouse, address: str) -> None:
    """An outbox row for `address` as an older newsmon (or a hand edit) may have left it."""
    with warehouse.transaction() as con:
        for (cid,) in con.execute("SELECT change_id FROM change_log").fetchall():
            con.execute("INSERT INTO alert_outbox (change_id, recipient, status, attempts, created_at) "
                        "VALUES (?, ?, 'due', 0, now())", [cid, address])


def test_alerts_bad_recipients_fail_alone_and_for_good(settings, warehouse, smtp):
    many = settings.model_copy(update={"alerts": AlertSettings(recipients=[
        "nobody@example.org", "busy@example.org", RECIPIENT])})
    seed(warehouse)
    detect_changes.fn(many, warehouse, "run-1")
    for hostile in ("grp:x@y;@example.org", "a@b@example.org"):
        _outbox_recipient(warehouse, hostile)
    counts = send_alerts.fn(many, warehouse, "run-1")
    assert counts["messages"] == 1 and counts["failed"] == 8
    assert smtp.envelopes == [("newsmon@localhost", [RECIPIENT])]  # the good one got through
    rows = {r["recipient"]: r for r in warehouse.read(
        "SELECT recipient, any_value(status) AS status, max(attempts) AS attempts, any_value(last_error) AS error "
        "FROM alerts GROUP BY recipient")}
    for permanent in ("nobody@example.org", "grp:x@y;@example.org", "a@b@example.org"):
        assert (rows[permanent]["status"], rows[permanent]["attempts"]) == ("failed", 1), rows[permanent]
    assert "550" in rows["nobody@example.org"]["error"]
    assert "is a group" in rows["grp:x@y;@example.org"]["error"]
    assert "'@' signs" in rows["a@b@example.org"]["error"]
    assert rows["busy@example.org"]["status"] == "due" and "450" in rows["busy@example.org"]["error"]
    # a later run tries only the temporary failure again
    smtp.clear()
    assert send_alerts.fn(many, warehouse, "run-2")["failed"] == 2
    assert smtp.envelopes == []


def test_alerts_non_ascii_address_needs_smtputf8(warehouse, smtp):
    """Through a server without SMTPUTF8, a non-ASCII address fails for good at the first try (the
    others still get their mail); through one with it (the session server), it is delivered."""
    plain_server = SmtpServer(enable_SMTPUTF8=False)
    plain_server.up()
    try:
        ascii_only = Settings(warehouse=WarehouseSettings(path=warehouse.path),
                              smtp=SmtpSettings(host="127.0.0.1", port=plain_server.port, timeout=5),
                              alerts=AlertSettings(recipients=["jürgen@bücher.example", RECIPIENT]))
        seed(warehouse)
        detect_changes.fn(ascii_only, warehouse, "run-1")
        counts = send_alerts.fn(ascii_only, warehouse, "run-1")
        assert (counts["messages"], counts["failed"], counts["failed_for_good"]) == (1, 2, 2)
        assert plain_server.envelopes == [("newsmon@localhost", [RECIPIENT])]
        rows = warehouse.read("SELECT DISTINCT status, attempts, last_error FROM alerts WHERE recipient <> ?",
                              [RECIPIENT])
        assert len(rows) == 1 and (rows[0]["status"], rows[0]["attempts"]) == ("failed", 1)
        assert "does not offer SMTPUTF8" in rows[0]["last_error"]
        assert send_alerts.fn(ascii_only, warehouse, "run-2") == {"failed_for_good": 2}  # not tried again
    finally:
        plain_server.down()
    first_change = stored_changes(warehouse)[0]["change_id"]
    with warehouse.transaction() as con:
        assert ob.requeue(con, first_change, "jürgen@xn--bcher-kva.example", dt.datetime.now(dt.timezone.utc)) == 1
    utf8 = ascii_only.model_copy(update={"smtp": SmtpSettings(host="127.0.0.1", port=smtp.port, timeout=5)})
    assert send_alerts.fn(utf8, warehouse, "run-3")["messages"] == 1
    assert smtp.envelopes == [("newsmon@localhost", ["jürgen@xn--bcher-kva.example"])]


def test_alerts_cli_resend_respects_the_recipients_filters_unless_forced(tmp_path, warehouse, smtp):
    import typer
    from typer.testing import CliRunner

    from newsmon.alerts_cli import alerts_app

    app = typer.Typer()
    app.add_typer(alerts_app, name="alerts")
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "{warehouse.path}"\n\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
                      'timeout = 5\n\n[[alerts.recipients]]\naddress = "aid-desk@example.org"\nkinds = ["aid"]\n\n'
                      '[[alerts.recipients]]\naddress = "analyst@example.org"\n')
    run = lambda *a: CliRunner().invoke(app, ["alerts", *a, "--config", str(config)])  # noqa: E731
    seed(warehouse)
    settings = load_settings_for(config)
    detect_changes.fn(settings, warehouse, "run-1")
    assert run("send").exit_code == 0 and len(smtp.messages) == 2
    [talks] = warehouse.read("SELECT change_id FROM changes WHERE kind = 'position'")
    refused = run("resend", talks["change_id"], "--recipient", "aid-desk@example.org")
    assert refused.exit_code != 0
    assert "aid-desk@example.org's filters (kinds=aid) exclude this change" in str(refused.exception)
    # without --recipient: only those whose filters want it
    everyone = run("resend", talks["change_id"])
    assert everyone.exit_code == 0 and "queued 1 alert" in everyone.output
    forced = run("resend", talks["change_id"], "--recipient", "aid-desk@example.org", "--force")
    assert forced.exit_code == 0 and "queued 1 alert" in forced.output
    assert run("send").exit_code == 0
    resent = {rcpts[0]: msg for (_, rcpts), msg in zip(smtp.envelopes[2:], smtp.parsed()[2:])}
    assert sorted(resent) == ["aid-desk@example.org", "analyst@example.org"]
    for msg in resent.values():
        assert msg["Subject"].startswith("[Resent] France on direct talks with putin")
        assert msg["X-Newsmon-Resend"] in ("1", "2")


def load_settings_for(config: Path) -> Settings:
    from newsmon.settings import load_settings

    return load_settings(config)


def test_alerts_cli_send_exits_non_zero_when_a_send_failed(cli, settings, warehouse, smtp):
    seed(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    smtp.down()
    down = cli("send")
    assert down.exit_code == 1, down.output
    assert "failed=2" in down.output
    smtp.up()
    up = cli("send")
    assert up.exit_code == 0 and "messages=1" in up.output


# -- SIGKILL during a batch --------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("arrived", [False, True], ids=["killed-before-it-arrived", "killed-after-it-arrived"])
def test_alerts_send_killed_mid_batch_resends_at_most_the_message_in_flight(tmp_path, warehouse, smtp, arrived):
    """`newsmon alerts send` (a real process) is SIGKILLed while the server holds the second of
    three recipients' messages in DATA. Each message's send is recorded before the next starts, so
    the first recipient is never mailed again; the message in flight is sent again by the next run
    with the same Message-ID: exactly once if the kill came before it arrived, twice (at-least-once,
    the only duplicate possible) if it arrived but its "250" was never read."""
    import os
    import signal
    import subprocess
    import sys

    addresses = ["a@example.org", "b@example.org", "c@example.org"]
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "{warehouse.path}"\n\n[smtp]\nhost = "127.0.0.1"\nport = {smtp.port}\n'
                      f'timeout = 5\n\n[alerts]\nrecipients = {addresses!r}\n'.replace("'", '"'))
    settings = load_settings_for(config)
    seed(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    hold = smtp.hold[("b@example.org",)] = Hold(keep_first=arrived)
    log = tmp_path / "send.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).with_name("newsmon")), "alerts", "send", "--config",
                                 str(config)], stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, "NO_COLOR": "1"})
    try:
        assert hold.reached.wait(120), log.read_text(errors="replace")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(0.5)  # the server sees the connection close before the hold ends
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        hold.release()
    assert proc.returncode == -signal.SIGKILL
    status = {r["recipient"]: r["status"] for r in warehouse.read("SELECT DISTINCT recipient, status FROM alerts")}
    assert status == {"a@example.org": "sent", "b@example.org": "sending", "c@example.org": "due"}
    [in_flight] = {r["message_id"] for r in warehouse.read(
        "SELECT message_id FROM alerts WHERE recipient = 'b@example.org'")}

    # five minutes later (the attempt is stale), the next run
    with warehouse.transaction() as con:
        con.execute("UPDATE alert_outbox SET last_attempt_at = last_attempt_at - INTERVAL 5 MINUTE "
                    "WHERE status = 'sending'")
    counts = send_alerts.fn(settings, warehouse, "run-2")
    assert (counts["resent_messages"], counts["messages"]) == (1, 1)
    assert send_alerts.fn(settings, warehouse, "run-3", stale_after=0) == {}
    got = collections.Counter(rcpts[0] for _, rcpts in smtp.envelopes)
    assert got == {"a@example.org": 1, "b@example.org": 2 if arrived else 1, "c@example.org": 1}
    assert {m["Message-ID"] for m in smtp.parsed() if m["To"] == "b@example.org"} == {in_flight}
    assert {r["status"] for r in warehouse.read("SELECT status FROM alerts")} == {"sent"}


# -- the briefing -------------------------------------------------------------------------------
NORWAY_OLD = "Norway will give Ukraine NOK 2 billion in military support this year, the government said."
NORWAY_NEW = "Norway raised its military support for Ukraine to NOK 3 billion on Friday."


def seed_briefing(wh: Warehouse) -> None:
    """France's stance (two speakers, two outlets) and Norway's military aid in NOK (two outlets)."""
    talks_old = dict(pos("talks-1", 0, "oppose"), evidence=TALKS_OLD + "\n", actor="Emmanuel Macron")
    talks_new = dict(pos("talks-2", 40, "conditional"), evidence=TALKS_NEW, actor="Jean-Noël Barrot")
    aid_old = dict(pledge("nok-1", 10, 2 * B, "NOK", eur=0.17 * B, donor="Norway"), evidence=NORWAY_OLD)
    aid_new = dict(pledge("nok-2", 50, 3 * B, "NOK", eur=0.255 * B, donor="Norway"), evidence=NORWAY_NEW)
    add_articles(wh, [talks_old, talks_new], [aid_old, aid_new])
    now = dt.datetime.now(dt.timezone.utc)
    with wh.transaction() as con:
        con.execute("UPDATE position_claims SET cue = 'direct talks'")
        con.execute("UPDATE pledge_claims SET kind = 'military', "
                    "money_text = CASE WHEN amount = 2e9 THEN 'NOK 2 billion' ELSE 'NOK 3 billion' END")
        for feed, name in (("le-monde-wire", "talks-1"), ("le-monde-wire", "talks-2"), ("nrk-news", "nok-1"),
                           ("nrk-news", "nok-2")):
            con.execute("INSERT INTO feed_entries (feed, url, first_seen_at) VALUES (?, ?, ?)", [feed, url(name), now])


def maybe_run_eval():
    if not RUN_EVAL.exists():
        return None
    spec = importlib.util.spec_from_file_location("run_eval_for_briefing", RUN_EVAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_alerts_digest_is_a_briefing_with_every_fact_and_a_chart_per_change(settings, warehouse, smtp):
    import io

    from PIL import Image

    from tasks.topics import load_topics

    seed_briefing(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    assert send_alerts.fn(settings, warehouse, "run-1")["messages"] == 1
    [msg] = smtp.parsed()
    # the subject names the biggest change: +50 % of military aid outweighs a move to 'conditional'
    assert msg["Subject"] == "Norway aid to Ukraine: NOK 2bn → NOK 3bn (+50%) (and 1 more change)"
    plain, html = bodies(msg)
    flat = " ".join(line.strip().removeprefix("> ") for line in plain.splitlines()).replace("*", "")
    description = load_topics(ROOT / "config" / "topics.yaml").topics["direct_talks_with_putin"].description
    facts = [
        # positions: the topic's description, who said what, when and where
        description, "Emmanuel Macron", "Jean-Noël Barrot", "Before: oppose, 2024-01-01, Le Monde Wire",
        "Now: conditional, 2024-02-10, Le Monde Wire", TALKS_OLD, TALKS_NEW, url("talks-1"), url("talks-2"),
        # aid: kind, EUR equivalents, change in percent, both sentences, dates, outlets
        "kind: military", "in EUR: €170m → €255m", "change: +50%", "Before: NOK 2bn, 2024-01-11, Nrk News",
        "Now: NOK 3bn, 2024-02-20, Nrk News", NORWAY_OLD, NORWAY_NEW, url("nok-1"), url("nok-2"),
        # the history behind each chart, in words
        "History: oppose (2024-01-01), conditional (2024-02-10)", "History: NOK 2bn (2024-01-11), NOK 3bn (2024-02-20)",
    ]
    for fact in facts:
        assert fact in flat, fact
    marked = " ".join(line.strip().removeprefix("> ") for line in plain.splitlines())
    assert "*direct talks*" in marked and "*NOK 3 billion*" in marked  # the key words, emphasised
    assert "<strong>direct talks</strong>" in html and "<strong>NOK 3 billion</strong>" in html
    assert "newsmon alerts" not in plain + html and "newsmon sql" not in plain + html  # no CLI homework
    assert 'style="' in html and "<style" not in html  # inline CSS only (mail clients drop <style>)

    # one chart per change, embedded: every cid: the HTML names is a PNG part that decodes
    html_part = msg.get_body(preferencelist=("html",))
    related = next(p for p in msg.walk() if p.get_content_type() == "multipart/related")
    images = {p["Content-ID"].strip("<>"): p.get_content() for p in related.iter_parts()
              if p.get_content_type() == "image/png"}
    cids = re.findall(r'src="cid:([^"]+)"', html_part.get_content())
    assert len(cids) == 2 and sorted(cids) == sorted(images)
    for png in images.values():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(png)) as img:
            img.verify()
        with Image.open(io.BytesIO(png)) as img:
            assert img.format == "PNG" and img.size == (560, 200)
            assert len(img.convert("L").getcolors(maxcolors=1 << 16) or []) > 10  # something is drawn

    module = maybe_run_eval()
    if module is not None:  # read as the acceptance harness reads mail: each change on exactly one line
        for change in stored_changes(warehouse):
            assert len(announcing_lines(module, harness_lines(module, smtp.messages), change)) == 1, change


def test_alerts_chart_failure_never_stops_the_alert(settings, warehouse, smtp, monkeypatch):
    from tasks import charts

    def broken(*args, **kwargs):
        raise RuntimeError("no backend")

    monkeypatch.setattr(charts, "stance_timeline_png", broken)
    seed_briefing(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    assert send_alerts.fn(settings, warehouse, "run-1")["messages"] == 1
    [msg] = smtp.parsed()
    plain, _ = bodies(msg)
    assert "France | direct talks with putin | position: oppose → conditional" in plain


# -- the briefing as a mail client shows it (headless Chromium) -----------------------------------
def _chromium() -> str | None:
    import shutil

    return next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _render_in_chromium(chromium: str, msg, folder: Path, name: str) -> tuple[str, Path]:
    """The HTML part as a mail client shows it: each `cid:` replaced by its image part saved beside
    it; Chromium's DOM after load (the body's data-images lists each image's decoded size) and a
    720x1500 screenshot."""
    import subprocess

    folder.mkdir(exist_ok=True)
    page = msg.get_body(preferencelist=("html",)).get_content()
    for part in msg.walk():
        if part.get_content_type() == "image/png":
            cid = part["Content-ID"].strip("<>")
            file = re.sub(r"[^A-Za-z0-9.-]", "_", cid) + ".png"
            (folder / file).write_bytes(part.get_content())
            page = page.replace(f"cid:{cid}", file)
    probe = ("<script>window.addEventListener('load', () => document.body.setAttribute('data-images', "
             "Array.from(document.images).map(i => i.complete ? i.naturalWidth + 'x' + i.naturalHeight : 'no')"
             ".join(',')));</script>")
    (folder / f"{name}.html").write_text(page.replace("</body>", probe + "</body>"), encoding="utf-8")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--allow-file-access-from-files", f"--user-data-dir={folder / 'profile'}"]
    target = (folder / f"{name}.html").as_uri()
    dom = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom", target], capture_output=True,
                         text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = folder / f"{name}.png"
    run = subprocess.run([*flags, "--window-size=720,1500", f"--screenshot={shot}", target], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    return dom.stdout, shot


def _assert_screenshot(shot: Path) -> None:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(shot.read_bytes())) as img:
        assert img.size == (720, 1500)
        assert len(img.convert("L").getcolors(maxcolors=1 << 16) or []) > 20  # not a blank page


@pytest.mark.slow
def test_alerts_briefing_renders_in_headless_chromium_with_its_charts(settings, warehouse, smtp, tmp_path):
    """The briefing and then a correction, rendered by headless Chromium: the pages load, every
    chart decodes at its size, and screenshots are taken (NEWSMON_WRITE_DOCS=1 keeps them as
    docs/email.png and docs/correction.png)."""
    import os
    import shutil

    chromium = _chromium()
    if chromium is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium)")
    seed_briefing(warehouse)
    detect_changes.fn(settings, warehouse, "run-1")
    send_alerts.fn(settings, warehouse, "run-1")
    [msg] = smtp.parsed()
    dom, shot = _render_in_chromium(chromium, msg, tmp_path / "briefing", "email")
    assert 'data-images="560x200,560x200"' in dom, dom[-2000:]
    assert "Norway aid to Ukraine" in dom and "Jean-Noël Barrot" in dom
    _assert_screenshot(shot)

    # an article dated between the two arrives late with NOK 2.6 billion: the announced
    # NOK 2bn -> 3bn is withdrawn; 2bn -> 2.6bn and 2.6bn -> 3bn stand in its place
    add_articles(warehouse, [], [dict(pledge("nok-late", 30, 2.6 * B, "NOK", eur=0.221 * B, donor="Norway"),
                                      evidence="Norway lifted its pledge to Ukraine to NOK 2.6 billion.")])
    with warehouse.transaction() as con:
        con.execute("UPDATE pledge_claims SET kind = 'military', money_text = 'NOK 2.6 billion' "
                    "WHERE url = ?", [url("nok-late")])
    assert detect_changes.fn(settings, warehouse, "run-2")["corrections_queued"] == 1
    assert send_alerts.fn(settings, warehouse, "run-2")["corrections"] == 1
    correction = smtp.parsed()[-1]
    assert correction["In-Reply-To"] == msg["Message-ID"]
    dom, corrected = _render_in_chromium(chromium, correction, tmp_path / "correction", "correction")
    assert 'data-images="560x200,560x200"' in dom, dom[-2000:]  # the two changes that stand now
    assert "withdrawn" in dom.lower()
    _assert_screenshot(corrected)
    if os.environ.get("NEWSMON_WRITE_DOCS") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "email.png")
        shutil.copyfile(corrected, ROOT / "docs" / "correction.png")

def test_alerts_retract_restore_retract_owes_one_correction(settings, warehouse, smtp):
    """Retracted (the correction cannot go: server down), restored (the correction is cancelled),
    retracted again (owed again): one correction in the end, never two."""
    _announce_then_retract(settings, warehouse)
    smtp.down()
    send_alerts.fn(settings, warehouse, "run-2")
    add_articles(warehouse, [pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-3")
    assert warehouse.read("SELECT status FROM alert_corrections") == [dict(status="cancelled")]
    with warehouse.transaction() as con:
        con.execute("DELETE FROM position_claims WHERE url = ?", [url("mar")])
    assert detect_changes.fn(settings, warehouse, "run-4")["retracted"] == 1
    assert warehouse.read("SELECT status FROM alert_corrections") == [dict(status="due")]
    smtp.up()
    assert send_alerts.fn(settings, warehouse, "run-5")["corrections"] == 1
    assert send_alerts.fn(settings, warehouse, "run-6", stale_after=0) == {}
    assert [m["Subject"].startswith("Correction") for m in smtp.parsed()] == [False, True]


def test_alerts_restored_after_its_correction_is_announced_again(settings, warehouse, smtp):
    _announce_then_retract(settings, warehouse)
    assert send_alerts.fn(settings, warehouse, "run-2")["corrections"] == 1
    add_articles(warehouse, [pos("mar", 60, "oppose")])  # March says it after all
    detect_changes.fn(settings, warehouse, "run-3")
    assert send_alerts.fn(settings, warehouse, "run-3")["messages"] == 1
    original, correction, again = smtp.parsed()
    assert again["Subject"] == "[Resent] France on direct talks with putin: support → oppose"
    assert again["Message-ID"] not in (original["Message-ID"], correction["Message-ID"])


def test_alerts_briefing_for_converts_to_eur_and_draws_the_history():
    from tasks.briefing import briefing_for, outlet_name
    from tasks.money import load_fx_table

    fx = load_fx_table(ROOT / "config" / "fx.yaml")
    aid = a_change(change_id="n", kind="aid", actor_group="Norway", subject="Ukraine", old_value="NOK 2bn",
                   new_value="NOK 3bn", old_amount=2 * B, new_amount=3 * B, currency="NOK", old_currency="NOK",
                   relative_change=0.5, old_published_at=day(10), new_published_at=day(50))
    history = [dict(published_at=day(10), value=2 * B, currency="NOK", amount_eur=None),
               dict(published_at=day(50), value=3 * B, currency="NOK", amount_eur=None)]
    facts = dict(old_claim=dict(kind="military", amount=2 * B, amount_eur=None, money_text="NOK 2 billion"),
                 new_claim=dict(kind="military", amount=3 * B, amount_eur=None, money_text="NOK 3 billion"),
                 old_outlet="nrk-news", new_outlet=None, history=history)
    b = briefing_for(aid, facts, {}, fx)
    assert b.aid_kind == "military" and b.new_keys == ("NOK 3 billion",)
    assert b.old_eur and b.new_eur and abs(b.new_eur / b.old_eur - 1.5) < 0.05  # rates of two dates, close
    assert b.history == ((day(10), "NOK 2bn"), (day(50), "NOK 3bn"))
    assert b.chart.startswith(b"\x89PNG") and b.old_outlet == "Nrk News" and b.new_outlet is None
    assert briefing_for(aid, facts, {}, fx, chart=False).chart is None
    assert outlet_name("kyiv_ledger") == "Kyiv Ledger"
    talks = briefing_for(a_change(), dict(history=[]), {"direct_talks_with_putin": "leaders talking"}, None)
    assert talks.topic == "leaders talking" and talks.chart.startswith(b"\x89PNG")


def test_alerts_change_retracted_while_its_alert_was_in_flight_is_corrected_after_it_went(
        settings, warehouse, smtp, monkeypatch):
    """Retracted while its message was 'sending' (a crash after the hand-over): the correction waits
    for the re-send, then names that message and its date."""
    add_articles(warehouse, [pos("jan", 0, "support"), pos("mar", 60, "oppose")])
    detect_changes.fn(settings, warehouse, "run-1")

    send_then_die_before_marking(settings, warehouse, monkeypatch)
    with warehouse.transaction() as con:
        con.execute("DELETE FROM position_claims WHERE url = ?", [url("mar")])
    assert detect_changes.fn(settings, warehouse, "run-2")["corrections_queued"] == 1
    assert send_alerts.fn(settings, warehouse, "run-2") == {"due": 1}  # the announcement's fate is unknown
    counts = send_alerts.fn(settings, warehouse, "run-3", stale_after=0)
    assert counts["resent_messages"] == 1 and counts["corrections"] == 1
    first, again, correction = smtp.parsed()
    assert again["Message-ID"] == first["Message-ID"] == correction["In-Reply-To"]
    sent_on = email.utils.parsedate_to_datetime(correction["Date"]).astimezone(dt.timezone.utc).date()
    assert f"alert of {sent_on.isoformat()}" in correction["Subject"]
