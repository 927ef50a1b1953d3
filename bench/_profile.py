"""Summarise a py-spy ``raw`` profile of ingest (collapsed stacks, one per line with its count).

Usage::

    python bench/_profile.py PROFILE.txt [--top 15]

Prints where the samples went, by stage (each stack is charged to the first
stage, in ``STAGES`` order, that one of its frames names), then the top self-time
frames (the leaf function of each stack). The ingest process's main thread
has the process id as its thread id; any other thread running paho frames is
paho's network thread.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_THREAD = re.compile(r"^thread \((\d+)\)(?::\s*(.*))?$")
_FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")

# (stage, markers), in priority order: a stack belongs to the first stage one of
# whose markers appears in any of its frames (decode_events calls into ids.py, so
# "JSON decode" must be tried before "topic parsing", and asyncio comes last).
STAGES: list[tuple[str, tuple[str, ...]]] = [
    ("startup (imports, settings, connect)", ("<frozen importlib", "importlib/__init__",
                                             "load_settings", "_open_pool",
                                             "reload_registry")),
    ("acks (client.ack → paho)", ("IngestClient.ack",)),
    ("JSON decode + wire checks", ("decode_events", "decode_status")),
    ("validation (registry, skew)", ("check_batch",)),
    ("topic parsing", ("Topic.parse",)),
    ("planning (rows, plan)", ("ingest/plan.py",)),
    ("NOTIFY payloads", ("notify_payloads",)),
    ("asyncpg COPY (encode, send)", ("copy_records_to_table",)),
    ("asyncpg SQL (execute/fetch/commit)", ("asyncpg/",)),
    ("batch collection (queues)", ("collect (ingest/service.py",)),
    ("metrics", ("prometheus_client",)),
    ("asyncio event loop (wake-ups, callbacks)", ("asyncio/",)),
]


@dataclass(frozen=True, slots=True)
class Stack:
    thread: str
    frames: tuple[str, ...]  # root first
    count: int


def parse(path: Path) -> list[Stack]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        body, _, count = line.rpartition(" ")
        if not body or not count.isdigit():
            continue
        parts = body.split(";")
        m = _THREAD.match(parts[0])
        thread = m[1] if m else "?"
        stacks.append(Stack(thread, tuple(parts[1:] if m else parts), int(count)))
    return stacks


def main_thread(stacks: list[Stack]) -> str:
    """The thread whose stacks start in ``runpy`` (the process's main thread)."""
    starts = Counter(s.thread for s in stacks if s.frames and "runpy" in s.frames[0])
    return starts.most_common(1)[0][0] if starts else "?"


def stage_of(stack: Stack, main: str) -> str:
    if stack.thread != main:
        if any("IngestClient._on_message" in f for f in stack.frames):
            return "paho thread: on_message hand-over"
        return "paho thread: network loop (read, parse packets, write)"
    for stage, markers in STAGES:
        if any(m in frame for frame in stack.frames for m in markers):
            return stage
    return "other"


def self_frame(stack: Stack) -> str:
    if not stack.frames:
        return "?"
    m = _FRAME.match(stack.frames[-1])
    return f"{m[1]} ({m[2]})" if m else stack.frames[-1]


def summarise(stacks: list[Stack], top: int) -> str:
    main = main_thread(stacks)
    stages: Counter[str] = Counter()
    leaves: dict[str, Counter[str]] = {"main thread (asyncio)": Counter(),
                                       "paho network thread": Counter()}
    for s in stacks:
        stage = stage_of(s, main)
        stages[stage] += s.count
        if not stage.startswith("startup"):
            leaves["main thread (asyncio)" if s.thread == main else "paho network thread"][
                self_frame(s)] += s.count
    total = sum(stages.values())
    working = total - sum(v for k, v in stages.items() if k.startswith("startup"))
    lines = [f"{total} samples ({working} after start-up)", "",
             "by stage (% of samples after start-up):"]
    for stage, n in stages.most_common():
        share = "" if stage.startswith("startup") else f"{100 * n / max(working, 1):5.1f} %"
        lines.append(f"  {share:>8}  {n:6d}  {stage}")
    for thread, counts in leaves.items():
        lines += ["", f"top {top} self-time frames, {thread} (% of all samples after start-up):"]
        for frame, n in counts.most_common(top):
            lines.append(f"  {100 * n / max(working, 1):5.1f} %  {frame}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description="Summarise a py-spy raw profile of ingest")
    p.add_argument("profile", type=Path)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    print(summarise(parse(args.profile), args.top))


if __name__ == "__main__":
    main()
