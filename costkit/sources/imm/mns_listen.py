"""The `costkit listen` loop: receive a batch, store it, then delete it from the queue.

At least once (operations-facts.md section 2): each batch's records go to the sink in one commit, and only
after that commit are the messages deleted (batch delete). A crash in between leaves them in the queue; they
come back after the visibility timeout and the store's upsert makes the second delivery harmless.

A body that cannot be decoded is never deleted silently: it is counted, reported with its MessageId and the
reason, and left in the queue for its dead-letter policy (MNS re-delivers it with a higher DequeueCount). With
a dead-letter file it is appended there as one JSON line (flushed to disk) and then deleted.

The sink is duck-typed (the store layer sits above this one): `sink.commit(records)` stores them in
one transaction and returns counts with `new`, `updated` and `unchanged`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from costkit.sources.imm.mns import MAX_BATCH, MAX_WAIT_SECONDS, BadMessage, QueueClient, Received, decode_body

UTC = timezone.utc
IDLE_PAUSE = 0.2   # seconds between receives that do not long-poll (--wait-seconds 0) on an empty queue


class Interrupted(BaseException):
    """Raised by a signal handler while the loop waits in a receive (nothing of a batch is in flight).
    A BaseException, so that the SDK's `except Exception` does not turn it into a network error."""


@dataclass
class ListenSummary:
    """What a listen did; `seconds` is wall time."""

    messages: int = 0          # messages received (a re-delivery counts again)
    new: int = 0               # tasks new to the store
    updated: int = 0           # stored tasks that a notification changed
    unchanged: int = 0
    other_types: int = 0       # notifications about other task types (deleted, not stored)
    bad_ids: set = field(default_factory=set)   # distinct MessageIds that could not be decoded
    dead_lettered: int = 0
    undeleted: int = 0         # good messages whose delete failed (they come back)
    batches: int = 0
    seconds: float = 0.0
    stopped_by: str = ""

    @property
    def bad(self) -> int:
        return len(self.bad_ids)

    def line(self) -> str:
        """The one-line summary `costkit listen` prints."""
        text = (f"listened {self.seconds:.1f} s: {self.messages} message{'s' if self.messages != 1 else ''}, "
                f"{self.new} task{'s' if self.new != 1 else ''} new, {self.updated} updated, "
                f"{self.unchanged} unchanged, {self.bad} bad message{'s' if self.bad != 1 else ''}")
        if self.dead_lettered:
            text += f" ({self.dead_lettered} written to the dead-letter file)"
        if self.other_types:
            text += f"; {self.other_types} of other task types skipped"
        if self.undeleted:
            text += f"; {self.undeleted} stored but not deleted (they come back)"
        return text


@dataclass
class ListenOptions:
    """`batch` 1..16 messages per receive; `wait_seconds` 0..30 of long polling; stop after `max_messages`
    received or `until_idle` seconds without a new message (None: run until a signal)."""

    batch: int = MAX_BATCH
    wait_seconds: int = MAX_WAIT_SECONDS
    max_messages: int | None = None
    until_idle: float | None = None
    default_region: str | None = None
    dead_letter: str | None = None


class Listener:
    """Runs the loop; `stop()` (from a signal handler) ends it after the batch in flight."""

    def __init__(self, client: QueueClient, sink, options: ListenOptions, *, log=None, progress=None,
                 clock=time.monotonic, sleep=time.sleep):
        self.client, self.sink, self.opt = client, sink, options
        self.log = log or (lambda text: None)
        self.progress = progress
        self.clock, self.sleep = clock, sleep
        self.summary = ListenSummary()
        self.stopping = False
        self.receiving = False   # a signal may interrupt a receive, never a commit or a delete

    def stop(self, reason: str = "signal") -> None:
        """Ask the loop to end; raises Interrupted when it is waiting in a receive."""
        self.stopping = True
        self.summary.stopped_by = self.summary.stopped_by or reason
        if self.receiving:
            self.receiving = False
            raise Interrupted()

    def run(self) -> ListenSummary:
        """Listen until a stop condition; return the summary."""
        s, opt = self.summary, self.opt
        started = last_new = self.clock()
        try:
            while not self.stopping:
                want = opt.batch if opt.max_messages is None else min(opt.batch, opt.max_messages - s.messages)
                wait = opt.wait_seconds
                if opt.until_idle is not None:
                    left = opt.until_idle - (self.clock() - last_new)
                    if left <= 0:
                        s.stopped_by = "idle"
                        break
                    wait = max(0, min(wait, int(left + 0.999)))
                msgs = self._receive(want, wait)
                if msgs is None:
                    break
                if msgs and self._handle(msgs):
                    last_new = self.clock()
                elif not msgs and wait == 0:
                    self.sleep(IDLE_PAUSE)   # no long poll to wait in: do not spin on an empty queue
                if opt.max_messages is not None and s.messages >= opt.max_messages:
                    s.stopped_by = "max-messages"
                    break
        finally:
            s.seconds = self.clock() - started
        return s

    def _receive(self, n: int, wait: int) -> list[Received] | None:
        try:
            self.receiving = True
            if self.stopping:
                return None
            return self.client.receive(n, wait)
        except Interrupted:
            return None   # whatever the server handed out comes back after its visibility timeout
        finally:
            self.receiving = False

    def _handle(self, msgs: list[Received]) -> bool:
        """Decode, commit, dead-letter, delete one batch; True when it held a message not seen bad before."""
        s = self.summary
        s.messages += len(msgs)
        s.batches += 1
        records, done, bad, fresh = [], [], [], False
        for m in msgs:
            try:
                d = decode_body(m.body, default_region=self.opt.default_region)
            except BadMessage as e:
                fresh = fresh or m.message_id not in s.bad_ids
                if m.message_id not in s.bad_ids:
                    self.log(f"bad message {m.message_id} (dequeue count {m.dequeue_count}): {e.reason}")
                s.bad_ids.add(m.message_id)
                bad.append((m, e.reason))
                continue
            fresh = True
            records += d.records
            s.other_types += d.other_types
            done.append(m.receipt_handle)
        if records:
            counts = self.sink.commit(records)
            s.new, s.updated = s.new + counts.new, s.updated + counts.updated
            s.unchanged += counts.unchanged
        if bad and self.opt.dead_letter:
            write_dead_letters(self.opt.dead_letter, self.client.queue_name, bad)
            s.dead_lettered += len(bad)
            done += [m.receipt_handle for m, _ in bad]
        self._delete(done)
        if self.progress:
            self.progress(s)
        return fresh

    def _delete(self, handles: list[str]) -> None:
        from costkit.core.errors import RuntimeFailure
        if not handles:
            return
        try:
            failed = self.client.delete(handles)
        except RuntimeFailure as e:
            failed = [(h, str(e)) for h in handles]
        if failed:
            self.summary.undeleted += len(failed)
            self.log(f"{len(failed)} stored message(s) not deleted; they come back and are stored again "
                     f"harmlessly: {failed[0][1]}")


def write_dead_letters(path: str, queue: str, bad: list[tuple[Received, str]]) -> None:
    """Append one JSON line per bad message (MessageId, queue, reason, body, ...) and flush it to disk."""
    now = datetime.now(UTC).isoformat()
    with open(path, "a", encoding="utf-8") as f:
        for m, reason in bad:
            f.write(json.dumps({
                "message_id": m.message_id, "queue": queue, "reason": reason, "dequeue_count": m.dequeue_count,
                "enqueue_time": m.enqueue_time.isoformat() if m.enqueue_time else None, "written_at": now,
                "body": m.body}, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
