"""The run store: one SQLite database (WAL) per run directory.

Every write is a transaction, so a process killed at any moment leaves whole records only, and
every stage can ask what is already done and skip it on resume.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal

from ..errors import FairError
from .disk import DiskFull, full_at, is_full
from .records import Attempt, Mistake, Review, Verdict, Writing

logger = logging.getLogger(__name__)

# The store's version (PRAGMA user_version): 1 added the left_out and trained tables; 2 keys a
# failure by what it was about too (a reviewer failing two authors' rationales of one item is two
# failures). Older stores gain new tables from SCHEMA (CREATE ... IF NOT EXISTS); a change to an
# existing table is a step in MIGRATIONS, run once, in order, for stores older than its version.
SCHEMA_VERSION = 2
# What SQLite needs free to go on: its WAL grows by up to 1000 pages (4 MiB) before it is folded back
WAL_HEADROOM = 1000 * 4096

# Another process may hold the store's write lock for a while (a long transaction of a run, a
# sqlite3 shell, a backup): that is busy, never damaged. A wait past FIRST_WAIT_S is worth a line
# saying what is waited for; then a reader waits up to READ_WAIT_S more, and a writer, which may
# hold a paid answer not stored yet, up to WRITE_WAIT_S.
FIRST_WAIT_S = 5.0
READ_WAIT_S = 60.0
WRITE_WAIT_S = 600.0


class StageStatus(StrEnum):
    """Where a stage of a round stands. The values are the strings the stages table has always
    held, so the run.sqlite files of earlier versions read the same; a StrEnum compares equal
    to them and prints as them."""

    PENDING = "pending"  # not run yet: never stored (no row), but what a reader shows for one
    RUNNING = "running"  # or killed without a chance to say so: the report checks the runner's pid
    DONE = "done"
    PARTIAL = "partial"  # finished with failed calls: a rerun retries them
    FAILED = "failed"  # raised an error, kept in the summary
    CANCELLED = "cancelled"  # stopped by the user after the calls in flight
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM
    STALE = "stale"  # done with settings that have changed since: runs again


@dataclass(frozen=True)
class StageRun:
    """Where one stage of one round stands, as stored; ``summary``: what it returned (with an
    ``error`` when it failed), None until it finishes."""

    round: int
    stage: str
    status: StageStatus
    started: float | None
    finished: float | None
    summary: dict | None


@dataclass(frozen=True)
class Failure:
    """A call a stage asked for that was not answered; ``about``: the author of a reviewed writing."""

    round: int
    stage: str
    item_id: str
    teacher: str
    reason: str
    about: str = ""


MIGRATIONS = {
    2: """
CREATE TABLE failures_2(round INTEGER, stage TEXT, item_id TEXT, teacher TEXT, reason TEXT,
    about TEXT NOT NULL DEFAULT '', PRIMARY KEY(round, stage, item_id, teacher, about));
INSERT INTO failures_2 SELECT round, stage, item_id, teacher, reason, '' FROM failures;
DROP TABLE failures;
ALTER TABLE failures_2 RENAME TO failures;
""",
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items(split TEXT, item_id TEXT, ord INTEGER, question TEXT, gold TEXT,
    meta TEXT, PRIMARY KEY(split, item_id));
CREATE TABLE IF NOT EXISTS attempts(round INTEGER, split TEXT, phase TEXT, item_id TEXT, output TEXT,
    answer TEXT, correct INTEGER, PRIMARY KEY(round, split, phase, item_id));
CREATE TABLE IF NOT EXISTS mistakes(round INTEGER, item_id TEXT, ord INTEGER, question TEXT, gold TEXT,
    wrong_output TEXT, wrong_answer TEXT, extra TEXT, PRIMARY KEY(round, item_id));
CREATE TABLE IF NOT EXISTS calls(key TEXT PRIMARY KEY, teacher TEXT, backend TEXT, model TEXT,
    purpose TEXT, item_id TEXT, request TEXT, response TEXT, prompt_tokens INTEGER,
    completion_tokens INTEGER, cost_usd REAL, latency_s REAL, attempts INTEGER, error TEXT,
    created REAL);
CREATE TABLE IF NOT EXISTS writings(round INTEGER, item_id TEXT, kind TEXT, teacher TEXT, text TEXT,
    call_key TEXT, PRIMARY KEY(round, item_id, kind, teacher));
CREATE TABLE IF NOT EXISTS reviews(round INTEGER, item_id TEXT, kind TEXT, author TEXT, reviewer TEXT,
    raw TEXT, score INTEGER, call_key TEXT, PRIMARY KEY(round, item_id, kind, author, reviewer));
CREATE TABLE IF NOT EXISTS verdicts(round INTEGER, item_id TEXT, kind TEXT, author TEXT,
    accepted INTEGER, value REAL, reason TEXT, PRIMARY KEY(round, item_id, kind, author));
CREATE TABLE IF NOT EXISTS failures(round INTEGER, stage TEXT, item_id TEXT, teacher TEXT,
    reason TEXT, about TEXT NOT NULL DEFAULT '', PRIMARY KEY(round, stage, item_id, teacher, about));
CREATE TABLE IF NOT EXISTS stages(round INTEGER, stage TEXT, status TEXT, started REAL,
    finished REAL, summary TEXT, PRIMARY KEY(round, stage));
CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, ts REAL, type TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS left_out(item_id TEXT PRIMARY KEY, reason TEXT);
CREATE TABLE IF NOT EXISTS trained(round INTEGER, item_id TEXT, question TEXT, PRIMARY KEY(round, item_id));
-- covering indexes for the report's counts: they never read a text column's pages
CREATE INDEX IF NOT EXISTS calls_by_teacher ON calls(teacher, attempts, prompt_tokens, completion_tokens, cost_usd);
CREATE INDEX IF NOT EXISTS writings_by_kind ON writings(round, kind, teacher);
CREATE INDEX IF NOT EXISTS reviews_by_writing ON reviews(round, kind, item_id, author, reviewer, score);
"""

TABLES = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)


def copy_store(source: Path, target: Path) -> None:
    """A consistent copy of the store at ``source`` in ``target``: SQLite's backup, whole even
    while a run writes to the source (its WAL included), read through a read-only connection."""
    src = sqlite3.connect(f"{Path(source).resolve().as_uri()}?mode=ro", uri=True, timeout=READ_WAIT_S)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _busy(error: sqlite3.Error) -> bool:
    """Whether ``error`` is another connection's lock (SQLITE_BUSY or SQLITE_LOCKED), not damage."""
    return getattr(error, "sqlite_errorcode", 0) & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _statements(script: str) -> list[str]:
    """A script's statements, to run one by one inside a transaction (``executescript`` commits
    the one that is open first). Fair's scripts hold no ``;`` inside a statement."""
    return [s for s in script.split(";") if s.strip()]


def _integrity(path: Path) -> str:
    """SQLite's verdict on the file at ``path``: "ok", or what is wrong with it."""
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=READ_WAIT_S)
    except sqlite3.Error as e:
        return str(e)
    try:
        return db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as e:
        return str(e)
    finally:
        db.close()


def locked(path: Path, waited: float) -> FairError:
    """The line for a store another process kept locked past every wait."""
    return FairError(
        f"{path} is locked by another process, still after {waited:.0f} s: nothing is damaged; let it "
        f"finish or stop it (a sqlite3 shell, a backup?), then run this again"
    )


def damaged(path: Path, error: Exception, verdict: str | None = None) -> FairError:
    """The line for a store that raised ``error``. It says "damaged" only when it is (its integrity
    check fails, or a table is missing), and then what is safe to do; a store that is whole but
    could not be read (a disk error) is said to be so: a good, paid run is never to be thrown
    away. (A busy store is waited for: see ``Store._patiently``.) ``verdict``: the integrity
    check's, if it has run."""
    path = Path(path)
    if not str(error).startswith("no such table"):
        verdict = verdict or _integrity(path)
        if verdict == "ok":
            return FairError(
                f"{path} could not be read ({error}), but its integrity check passes: nothing is lost; "
                f"fix the cause and run this again"
            )
    return FairError(
        f"{path} is damaged ({error}): keep {path.parent} as it is (its other files are whole); restore "
        f"{path.name} from a copy, or recover its rows with `sqlite3 {path} .recover | sqlite3 recovered.sqlite` "
        f"and move that in its place (its -wal and -shm files removed); or start again in a new --run-dir"
    )


class Store:
    """Thread-safe access to a run's database (one connection, serialised by a lock)."""

    def __init__(self, path: str | Path, check: bool = True, readonly: bool = False) -> None:
        """Opens (or creates) the store and checks it: a damaged file, or one written by a newer
        fair, is one FairError line, never a silent fresh start. ``readonly``: a reader's
        connection (``fair report``, exports, the UI's lists), which never takes the write lock,
        so it reads beside a writer; it is also what a folder this user cannot write to gets
        (``fair report`` on someone else's run). ``check=False`` skips the full integrity scan
        (linear in the file's size) for a reader that turns a damaged page into the same
        FairError itself (see :func:`damaged`)."""
        self.path = Path(path)
        self._lock = threading.RLock()
        writable = os.access(self.path.parent, os.W_OK)
        self.readonly = readonly or (self.path.is_file() and not writable)
        verdict = None
        try:
            self._connect(writable)
            verdict = self._db.execute("PRAGMA quick_check").fetchone()[0] if check else None
            if verdict not in (None, "ok"):
                raise sqlite3.DatabaseError(verdict)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == SCHEMA_VERSION:  # made whole in one transaction: a table missing since is damage
                present = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                missing = [table for table in TABLES if table not in present]
                if missing:
                    raise sqlite3.DatabaseError(f"no such table: {missing[0]}")
            if version < SCHEMA_VERSION and not self.readonly:
                self._create()
            elif version < SCHEMA_VERSION and writable:  # an older fair's store: brought up to date once
                self._db.close()
                Store(self.path, check=False).close()
                self._connect(writable)
        except BaseException as e:
            if hasattr(self, "_db"):
                self._db.close()
            if not isinstance(e, sqlite3.DatabaseError):
                raise
            if not writable:
                raise FairError(
                    f"{self.path.parent} is not writable: fix its permissions, or use another run dir"
                ) from None
            if is_full(e):  # the store is not damaged: it could not grow
                raise DiskFull.at(self.path, WAL_HEADROOM) from None
            raise damaged(self.path, e, verdict) from None
        if version > SCHEMA_VERSION:
            self._db.close()
            raise FairError(
                f"{self.path} was written by a newer fair (store version {version}; this one reads "
                f"up to {SCHEMA_VERSION}): upgrade fair"
            )

    def _connect(self, writable: bool) -> None:
        if self.readonly:  # immutable: no -shm can be made beside a file in a folder this user cannot write to
            self._db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro{'' if writable else '&immutable=1'}",
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=FIRST_WAIT_S,
            )
            return
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=FIRST_WAIT_S)
        self._patiently(lambda: self._db.execute("PRAGMA journal_mode=WAL"), WRITE_WAIT_S)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def _patiently(self, step: Callable[[], Any], wait_s: float) -> Any:
        """``step()``, waiting while another process holds the write lock: past FIRST_WAIT_S a line
        says what is waited for, and past ``wait_s`` more it is one FairError line."""
        try:
            return step()
        except sqlite3.OperationalError as e:
            if not _busy(e):
                raise
        logger.warning(
            "%s is locked by another process: waiting up to %.0f s for it to finish writing", self.path, wait_s
        )
        self._db.execute(f"PRAGMA busy_timeout = {int(wait_s * 1000)}")
        try:
            return step()
        except sqlite3.OperationalError as e:
            if not _busy(e):
                raise
            raise locked(self.path, FIRST_WAIT_S + wait_s) from None
        finally:
            self._db.execute(f"PRAGMA busy_timeout = {int(FIRST_WAIT_S * 1000)}")

    def _create(self) -> None:
        """Make the tables, or bring an older fair's up to date, in one transaction: a kill or a
        full disk midway leaves the store as it was. A store never stamped with a version that
        holds no row (a creation an older fair, making its tables one at a time, was killed in)
        is simply made again."""
        with self.tx() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return  # another process made it while this one waited
            tables = [
                r[0]
                for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            ]
            if version == 0 and not any(db.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() for t in tables):
                for table in tables:
                    db.execute(f'DROP TABLE "{table}"')
            elif tables:
                for step, script in sorted(MIGRATIONS.items()):
                    if version < step:
                        for statement in _statements(script):
                            db.execute(statement)
            for statement in _statements(SCHEMA):  # with the tables and indexes a later version added
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction: all of its writes land, or none. A full disk (at a write or at
        the commit) rolls it back and raises DiskFull, and the store takes the next one as before."""
        with self._lock, full_at(self.path, lambda: WAL_HEADROOM):
            self._patiently(lambda: self._db.execute("BEGIN IMMEDIATE"), WRITE_WAIT_S)
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cur = self._patiently(lambda: self._db.execute(sql, tuple(args)), READ_WAIT_S)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()

    def _mapping(self, sql: str, args: Iterable[Any] = ()) -> dict[Any, Any]:
        """A two-column query's rows as a dict: first column -> second."""
        return {r[0]: r[1] for r in self.query(sql, args)}

    # meta --------------------------------------------------------------------------------
    def set_meta(self, key: str, value: Any) -> None:
        with self.tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    # stages ------------------------------------------------------------------------------
    def stage_status(self, round: int, stage: str) -> StageStatus | None:
        """None: the stage has not run in ``round``."""
        rows = self.query("SELECT status FROM stages WHERE round = ? AND stage = ?", (round, stage))
        return StageStatus(rows[0][0]) if rows else None

    def mark_stage(self, round: int, stage: str, status: StageStatus, summary: dict | None = None) -> None:
        now = time.time()
        with self.tx() as db:
            db.execute(
                "INSERT INTO stages VALUES (?, ?, ?, ?, NULL, NULL) ON CONFLICT(round, stage) "
                "DO UPDATE SET status = excluded.status",
                (round, stage, status, now),
            )
            if status != StageStatus.RUNNING:  # done, partial, failed (with its error), cancelled, interrupted
                db.execute(
                    "UPDATE stages SET finished = ?, summary = ? WHERE round = ? AND stage = ?",
                    (now, json.dumps(summary or {}), round, stage),
                )

    def mark_stale(self, round: int, stages: Iterable[str]) -> int:
        """Mark those of ``stages`` that ran in ``round`` as stale: the next run does them again.
        How many had run."""
        with self.tx() as db:
            return db.executemany(
                "UPDATE stages SET status = ? WHERE round = ? AND stage = ?",
                [(StageStatus.STALE, round, s) for s in stages],
            ).rowcount

    def stages(self) -> list[StageRun]:
        """Every stage that has run, in the order they started."""
        return [
            StageRun(r[0], r[1], StageStatus(r[2]), r[3], r[4], None if r[5] is None else json.loads(r[5]))
            for r in self.query("SELECT * FROM stages ORDER BY round, started")
        ]

    # items and attempts ------------------------------------------------------------------
    def set_items(self, split: str, problems: Iterable) -> None:
        """The items of ``split`` this run uses, in order (replacing those stored before)."""
        with self.tx() as db:
            db.execute("DELETE FROM items WHERE split = ?", (split,))
            db.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?)",
                [(split, p.id, i, p.question, p.gold, json.dumps(dict(p.meta))) for i, p in enumerate(problems)],
            )

    def item_ids(self, split: str) -> list[str]:
        """The ids of the items of ``split`` this run uses, in order."""
        return [r[0] for r in self.query("SELECT item_id FROM items WHERE split = ? ORDER BY ord", (split,))]

    def set_left_out(self, reasons: dict[str, str]) -> None:
        """The test items not scored, each with why (see fair_core.runs.splits)."""
        with self.tx() as db:
            db.execute("DELETE FROM left_out")
            db.executemany("INSERT INTO left_out VALUES (?, ?)", list(reasons.items()))

    def left_out(self) -> dict[str, str]:
        return self._mapping("SELECT item_id, reason FROM left_out")

    def add_trained(self, round: int, questions: dict[str, str]) -> None:
        """What ``round`` trains on: item id -> normalised question."""
        with self.tx() as db:
            db.execute("DELETE FROM trained WHERE round = ?", (round,))
            db.executemany("INSERT INTO trained VALUES (?, ?, ?)", [(round, i, q) for i, q in questions.items()])

    def trained(self) -> dict[str, int]:
        """Every normalised question any round trained on -> the first such round."""
        return self._mapping("SELECT question, MIN(round) FROM trained GROUP BY question")

    def add_attempts(self, phase: str, attempts: Iterable[Attempt]) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO attempts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(a.round, a.split, phase, a.item_id, a.output, a.answer, int(a.correct)) for a in attempts],
            )

    def attempts(self, round: int, split: str, phase: str) -> list[Attempt]:
        rows = self.query("SELECT * FROM attempts WHERE round = ? AND split = ? AND phase = ?", (round, split, phase))
        return [
            Attempt(r["round"], r["split"], r["item_id"], r["output"], r["answer"], bool(r["correct"])) for r in rows
        ]

    def delete_attempts(self, round: int, split: str, phase: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM attempts WHERE round = ? AND split = ? AND phase = ?", (round, split, phase))

    def accuracy(self, round: int, split: str, phase: str) -> tuple[float, int] | None:
        row = self.query(
            "SELECT AVG(correct), COUNT(*) FROM attempts WHERE round = ? AND split = ? AND phase = ?",
            (round, split, phase),
        )[0]
        return (row[0], row[1]) if row[1] else None

    # mistakes ----------------------------------------------------------------------------
    def add_mistakes(self, mistakes: Iterable[Mistake]) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO mistakes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (m.round, m.item_id, i, m.question, m.gold, m.wrong_output, m.wrong_answer, json.dumps(m.extra))
                    for i, m in enumerate(mistakes)
                ],
            )

    def _select(
        self, table: str, round: int, kind: str | None = None, item_id: str | None = None, order: str = ""
    ) -> list[sqlite3.Row]:
        """A round's rows of ``table``, narrowed to one kind and/or one item (a key prefix: fast)."""
        used = {k: v for k, v in (("round", round), ("item_id", item_id), ("kind", kind)) if v is not None}
        return self.query(
            f"SELECT * FROM {table} WHERE {' AND '.join(f'{k} = ?' for k in used)}{order}", list(used.values())
        )

    def mistake_heads(self, round: int) -> list[Mistake]:
        """The round's mistakes without the student's whole output: what a list of them shows."""
        rows = self.query(
            "SELECT round, item_id, question, gold, wrong_answer FROM mistakes WHERE round = ? ORDER BY ord", (round,)
        )
        return [Mistake(r[0], r[1], r[2], r[3], "", r[4], {}) for r in rows]

    def mistakes(self, round: int, item_id: str | None = None) -> list[Mistake]:
        rows = self._select("mistakes", round, item_id=item_id, order=" ORDER BY ord")
        return [
            Mistake(
                r["round"],
                r["item_id"],
                r["question"],
                r["gold"],
                r["wrong_output"],
                r["wrong_answer"],
                json.loads(r["extra"]),
            )
            for r in rows
        ]

    # teacher calls: the cache --------------------------------------------------------------
    def cached_answer(self, key: str) -> str | None:
        """The stored answer of the call ``key``; None when it was never answered."""
        rows = self.query("SELECT response FROM calls WHERE key = ? AND response IS NOT NULL", (key,))
        return rows[0][0] if rows else None

    def record_call(self, key: str, call: dict) -> None:
        """Store one finished call (answered or failed); the records made from its answer follow
        with its key (:meth:`add_records`)."""
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO calls VALUES (:key, :teacher, :backend, :model,"
                " :purpose, :item_id, :request, :response, :prompt_tokens,"
                " :completion_tokens, :cost_usd, :latency_s, :attempts, :error, :created)",
                {**call, "key": key},
            )

    def calls_made(self) -> tuple[int, float]:
        """(calls stored, their cost in USD)."""
        calls, cost = self.query("SELECT COUNT(*), COALESCE(SUM(cost_usd), 0) FROM calls")[0]
        return calls, cost

    def spent_usd(self) -> float:
        return self.query("SELECT COALESCE(SUM(cost_usd), 0) FROM calls")[0][0]

    def completion_means(self) -> dict[tuple[str, str, str], tuple[float, int]]:
        """(teacher, model, purpose) -> (mean completion tokens, answered calls that counted some)."""
        rows = self.query(
            "SELECT teacher, model, purpose, AVG(completion_tokens), COUNT(*) FROM calls "
            "WHERE response IS NOT NULL AND completion_tokens > 0 GROUP BY teacher, model, purpose"
        )
        return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}

    def counted_prompts(self, limit: int) -> list[tuple[str, str, str, int]]:
        """(teacher, model, request, prompt tokens) of the first ``limit`` answered calls of each
        teacher and model whose provider counted the prompt's tokens, in the order they were stored."""
        rows = self.query(
            "SELECT teacher, model, request, prompt_tokens FROM (SELECT teacher, model, request, prompt_tokens,"
            " ROW_NUMBER() OVER (PARTITION BY teacher, model ORDER BY rowid) AS n FROM calls"
            " WHERE response IS NOT NULL AND prompt_tokens > 0) WHERE n <= ? ORDER BY teacher, model, n",
            (limit,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    # writings, reviews, verdicts ---------------------------------------------------------
    def add_records(self, records: Iterable[Writing | Review], call_key: str | None = None) -> None:
        """Store writings and reviews, in one transaction: those a teacher call's answer made (with
        its key) or a paper file's. A record of another type is a TypeError: no other table takes
        a call's records."""
        writings, reviews = [], []
        for r in records:
            if isinstance(r, Writing):
                writings.append((r.round, r.item_id, r.kind, r.author, r.text, call_key))
            elif isinstance(r, Review):
                reviews.append((r.round, r.item_id, r.kind, r.author, r.reviewer, r.raw, r.score, call_key))
            else:
                raise TypeError(f"a call's records are writings and reviews, not {type(r).__name__}")
        with self.tx() as db:
            db.executemany("INSERT OR REPLACE INTO writings VALUES (?, ?, ?, ?, ?, ?)", writings)
            db.executemany("INSERT OR REPLACE INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?, ?)", reviews)

    def delete_writings(self, round: int, kind: str) -> None:
        """Forget a round's writings of one kind (a redone stage writes them again)."""
        with self.tx() as db:
            db.execute("DELETE FROM writings WHERE round = ? AND kind = ?", (round, kind))

    def writings(self, round: int, kind: str | None = None, item_id: str | None = None) -> list[Writing]:
        rows = self._select("writings", round, kind, item_id)
        return [Writing(r["round"], r["item_id"], r["kind"], r["teacher"], r["text"]) for r in rows]

    def set_review_scores(self, reviews: Iterable[Review]) -> None:
        """Update the scores of stored reviews (a parser changed: the raw text is read again)."""
        with self.tx() as db:
            db.executemany(
                "UPDATE reviews SET score = ? WHERE round = ? AND item_id = ? AND kind = ? AND author = ? "
                "AND reviewer = ?",
                [(r.score, r.round, r.item_id, r.kind, r.author, r.reviewer) for r in reviews],
            )

    def reviews(self, round: int, kind: str | None = None, item_id: str | None = None) -> list[Review]:
        rows = self._select("reviews", round, kind, item_id)
        return [
            Review(r["round"], r["item_id"], r["kind"], r["author"], r["reviewer"], r["raw"], r["score"]) for r in rows
        ]

    def set_verdicts(self, round: int, verdicts: Iterable[Verdict]) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM verdicts WHERE round = ?", (round,))
            db.executemany(
                "INSERT INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(v.round, v.item_id, v.kind, v.author, int(v.accepted), v.value, v.reason) for v in verdicts],
            )

    def verdicts(self, round: int, kind: str | None = None, item_id: str | None = None) -> list[Verdict]:
        rows = self._select("verdicts", round, kind, item_id)
        return [
            Verdict(r["round"], r["item_id"], r["kind"], r["author"], bool(r["accepted"]), r["value"], r["reason"])
            for r in rows
        ]

    # counts: what the report and the run list show, counted in SQL (no text column is read) ------
    def rounds(self) -> list[int]:
        """The rounds the run holds anything of (mistakes, attempts, stages), in order."""
        sql = "SELECT round FROM mistakes UNION SELECT round FROM attempts UNION SELECT round FROM stages ORDER BY 1"
        return [r[0] for r in self.query(sql)]

    def answered_rounds(self) -> list[int]:
        """The rounds in which the student answered anything, in order."""
        return [r[0] for r in self.query("SELECT DISTINCT round FROM attempts ORDER BY 1")]

    def has_any(self, table: str) -> bool:
        """Whether ``table`` (one of TABLES) holds a row."""
        if table not in TABLES:
            raise ValueError(f"no table {table!r} in the store")
        return bool(self.query(f"SELECT 1 FROM {table} LIMIT 1"))

    def count_mistakes(self, round: int | None = None) -> int:
        """The mistakes of ``round`` (None: of every round)."""
        if round is None:
            return self.query("SELECT COUNT(*) FROM mistakes")[0][0]
        return self.query("SELECT COUNT(*) FROM mistakes WHERE round = ?", (round,))[0][0]

    def count_writings(self, round: int) -> dict[str, int]:
        """Kind -> the round's writings of it."""
        return self._mapping("SELECT kind, COUNT(*) FROM writings WHERE round = ? GROUP BY kind", (round,))

    def count_verdicts(self, round: int, kind: str) -> tuple[int, int, int]:
        """(verdicts, accepted, items with one accepted) of the round's writings of ``kind``."""
        row = self.query(
            "SELECT COUNT(*), COALESCE(SUM(accepted), 0), COUNT(DISTINCT CASE WHEN accepted THEN item_id END) "
            "FROM verdicts WHERE round = ? AND kind = ?",
            (round, kind),
        )[0]
        return row[0], row[1], row[2]

    def count_unaccepted(self, round: int, kind: str) -> int:
        """The round's mistakes with no writing of ``kind`` accepted."""
        return self.query(
            "SELECT COUNT(*) FROM mistakes m WHERE round = ? AND NOT EXISTS (SELECT 1 FROM verdicts v WHERE "
            "v.round = m.round AND v.item_id = m.item_id AND v.kind = ? AND v.accepted)",
            (round, kind),
        )[0][0]

    def count_accepted_items(self, kind: str) -> int:
        """The (round, item) pairs of every round with a writing of ``kind`` accepted."""
        return self.query(
            "SELECT COUNT(DISTINCT round || ':' || item_id) FROM verdicts WHERE kind = ? AND accepted", (kind,)
        )[0][0]

    def review_scores(self, round: int, kind: str) -> list[tuple[str, str, int | None]]:
        """(item, author, score) of the round's reviews of writings of ``kind``, their texts left out."""
        rows = self.query("SELECT item_id, author, score FROM reviews WHERE round = ? AND kind = ?", (round, kind))
        return [(r[0], r[1], r[2]) for r in rows]

    def call_totals(self) -> dict[str, tuple[int, int, int, float]]:
        """Teacher -> (calls, retries, tokens, cost in USD) of the calls stored."""
        rows = self.query(
            "SELECT teacher, COUNT(*), SUM(MAX(attempts - 1, 0)),"  # a call never sent took 0 tries
            " SUM(COALESCE(prompt_tokens, 0) + COALESCE(completion_tokens, 0)),"
            " SUM(COALESCE(cost_usd, 0)) FROM calls GROUP BY teacher"
        )
        return {r[0]: (r[1], r[2] or 0, r[3], r[4]) for r in rows}

    def failures_by_teacher(self) -> dict[str, int]:
        """Teacher -> failed calls, as the stages count them (one per call a stage asked for)."""
        return self._mapping("SELECT teacher, COUNT(*) FROM failures GROUP BY teacher")

    def written_by(self, kind: str) -> dict[str, int]:
        """Author -> writings of ``kind`` in every round."""
        return self._mapping("SELECT teacher, COUNT(*) FROM writings WHERE kind = ? GROUP BY teacher", (kind,))

    def accepted_by(self, kind: str) -> dict[str, int]:
        """Author -> accepted writings of ``kind`` in every round."""
        return self._mapping("SELECT author, SUM(accepted) FROM verdicts WHERE kind = ? GROUP BY author", (kind,))

    def score_totals(self, by: Literal["reviewer", "author"], kind: str) -> dict[str, tuple[int, int]]:
        """Reviewer (or author) -> (sum, count) of the scores given (or received) on writings of
        ``kind`` in every round, for means."""
        rows = self.query(
            f"SELECT {by}, SUM(score), COUNT(score) FROM reviews WHERE kind = ? AND score IS NOT NULL GROUP BY {by}",
            (kind,),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def budget_refused(self) -> bool:
        """Whether the budget refused a call that no run has made since."""
        return bool(self.query("SELECT 1 FROM failures WHERE reason LIKE 'budget of $% reached' LIMIT 1"))

    # failures and events -------------------------------------------------------------------
    def add_failure(self, round: int, stage: str, item_id: str, teacher: str, reason: str, about: str = "") -> None:
        """One failed call of a stage; ``about``: the author of a reviewed writing."""
        with self.tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?)",
                (round, stage, item_id, teacher, reason, about),
            )

    def clear_failures(self, round: int, stage: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM failures WHERE round = ? AND stage = ?", (round, stage))

    def failures(self, round: int | None = None) -> list[Failure]:
        """The failed calls of ``round`` (None: of every round)."""
        if round is None:
            rows = self.query("SELECT * FROM failures ORDER BY round, stage, item_id")
        else:
            rows = self.query("SELECT * FROM failures WHERE round = ? ORDER BY stage, item_id", (round,))
        return [Failure(*r) for r in rows]

    def count_failures(self, round: int, stage: str | None = None) -> int:
        """The failed calls of ``round`` (of one ``stage``)."""
        if stage is None:
            return self.query("SELECT COUNT(*) FROM failures WHERE round = ?", (round,))[0][0]
        return self.query("SELECT COUNT(*) FROM failures WHERE round = ? AND stage = ?", (round, stage))[0][0]

    def add_events(self, events: list[dict]) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT INTO events(ts, type, data) VALUES (?, ?, ?)",
                [(e["ts"], e["type"], json.dumps(e)) for e in events],
            )
