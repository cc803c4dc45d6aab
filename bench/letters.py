"""Lawyer letters per second: PDF rendering alone, and the whole LetterChannel send.

Renders one-page zh-CN (A4) and en-US (US Letter) letters alternately with the embedded CJK
font, in this process (one core) and in process pools; then sends through LetterChannel into a
temporary outbox (render + fsync'd atomic writes + manifest). Pool start-up is excluded
(a warm-up batch runs first). Prints a table.

    .venv/bin/python bench/letters.py --count 300 --processes 1,2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from dunning.channels.letter.channel import LetterChannel
from dunning.channels.letter.fonts import CjkFont, find_cjk_font, register_font
from dunning.channels.letter.law_firms import LawFirms
from dunning.channels.letter.pdf import LetterDocument, compose_letter, render_letter
from dunning.intents import (
    Channel,
    ContactIntent,
    PostalAddress,
    Recipient,
    Stage,
    TemplateRef,
    make_intent_id,
)
from dunning.logs import configure_logging
from dunning.settings import Settings
from dunning.templates import TemplateStore

CONFIG = Path(__file__).resolve().parents[1] / "config"


def intents(count: int) -> list[ContactIntent]:
    """Alternating zh-CN (CN, A4) and en-US (US, Letter) letter intents."""
    created = datetime.now(UTC)
    out = []
    for i in range(count):
        cn = i % 2 == 0
        address = (
            PostalAddress(("浦东新区世纪大道100号",), "上海", "200120", "CN")
            if cn
            else PostalAddress(("12 Elm Street",), "Boston", "02108", "US", region="MA")
        )
        account = f"bench-{i:06d}"
        out.append(
            ContactIntent(
                intent_id=make_intent_id(account, "mid.letter.d31", created.date()),
                account_id=account,
                person_id=f"person-{account}",
                debt_id=f"debt-{account}",
                jurisdiction="CN" if cn else "US",
                stage=Stage.MID,
                channel=Channel.LETTER,
                step="mid.letter.d31",
                template=TemplateRef("lawyer_letter", "zh-CN" if cn else "en-US"),
                recipient=Recipient(name="张三" if cn else "Jane Doe", postal_address=address),
                timezone="Asia/Shanghai" if cn else "America/New_York",
                amount_due=Decimal("12345.67"),
                currency="CNY" if cn else "USD",
                days_past_due=35,
                expires_at=created + timedelta(days=2),
                strategy="bench",
                variant="champion",
                created_at=created,
                trace_id=uuid.uuid4().hex,
            )
        )
    return out


def documents(batch: list[ContactIntent]) -> list[LetterDocument]:
    firms = LawFirms.load(CONFIG / "law_firms.toml")
    store = TemplateStore(CONFIG / "templates")
    return [
        compose_letter(i, firms.for_jurisdiction(i.jurisdiction), store, letter_date=date.today())
        for i in batch
    ]


def render_inline(docs: list[LetterDocument], font: CjkFont) -> tuple[float, float]:
    """Wall and CPU seconds to render ``docs`` in this process."""
    register_font(font)
    render_letter(docs[0], font)  # warm-up: font parsing and first subset
    start, cpu_start = time.perf_counter(), time.process_time()
    for doc in docs:
        render_letter(doc, font)
    return time.perf_counter() - start, time.process_time() - cpu_start


def render_pool(docs: list[LetterDocument], font: CjkFont, processes: int) -> float:
    with ProcessPoolExecutor(
        max_workers=processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=register_font,
        initargs=(font,),
    ) as pool:
        list(pool.map(render_letter, docs[: processes * 2], [font] * processes * 2))  # warm-up
        start = time.perf_counter()
        list(pool.map(render_letter, docs, [font] * len(docs), chunksize=4))
        return time.perf_counter() - start


async def send_all(batch: list[ContactIntent], config_dir: Path, outbox: Path) -> float:
    settings = Settings(
        config_dir=config_dir, letter_outbox=outbox, now=datetime.now().astimezone()
    )
    channel = LetterChannel.from_settings(settings)
    try:
        await channel.send(batch[0], attempt=1)  # warm-up (and pool start-up)
        start = time.perf_counter()
        await asyncio.gather(*(channel.send(i, attempt=1) for i in batch[1:]))
        return time.perf_counter() - start
    finally:
        await channel.aclose()


def channel_config(folder: Path, processes: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "channels.toml").write_text(
        f'[letter]\nlaw_firms = "{CONFIG / "law_firms.toml"}"\n'
        f'templates = "{CONFIG / "templates"}"\nrender_processes = {processes}\n',
        encoding="utf-8",
    )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300, help="letters per measurement")
    parser.add_argument("--processes", default="1,2", help="pool sizes, comma-separated")
    args = parser.parse_args()
    configure_logging("console", level="warning")
    pools = [int(p) for p in args.processes.split(",") if p.strip()]
    font = find_cjk_font()
    batch = intents(args.count)
    docs = documents(batch)
    rows: list[tuple[str, str, int, float]] = []
    wall_s, cpu_s = render_inline(docs, font)
    rows.append(("render, in process", "1", len(docs), wall_s))
    rows.append(("render, in process (per CPU second)", "1", len(docs), cpu_s))
    for n in pools:
        rows.append(("render, process pool", str(n), len(docs), render_pool(docs, font, n)))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for n in [0, *pools]:
            seconds = asyncio.run(
                send_all(batch, channel_config(root / f"cfg{n}", n), root / f"outbox{n}")
            )
            mode = "LetterChannel.send, render thread" if n == 0 else "LetterChannel.send, pool"
            rows.append((mode, str(max(n, 1)), len(batch) - 1, seconds))
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown",
    )  # fmt: skip
    load_1m = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, {cpu}; load {load_1m:.1f}; font {font.path.name}")
    print(f"{'mode':<36} {'processes':>9} {'letters':>8} {'seconds':>8} {'letters/s':>10}")
    for mode, processes, count, seconds in rows:
        print(f"{mode:<36} {processes:>9} {count:>8} {seconds:>8.2f} {count / seconds:>10.1f}")


if __name__ == "__main__":
    main()
