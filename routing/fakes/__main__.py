"""Run a fake vendor server by hand::

    python -m routing.fakes edenai --port 8101 --latency-ms 300
    python -m routing.fakes replicate --port 8102 --script 429,success --default success
    python -m routing.fakes ollama --port 11434

Then point the app at it, e.g. ``EDENAI_BASE_URL=http://127.0.0.1:8101 EDENAI_API_KEY=anything``.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from routing.fakes import FAKES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m routing.fakes", description=__doc__.split("::")[0]
    )
    parser.add_argument("vendor", choices=sorted(FAKES))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay before each answer")
    parser.add_argument(
        "--default",
        default="success",
        help="reply once the script is used up: success, 429, 500 (or any status), 402, 401, "
        "hang, malformed, fail, empty, refusal, length, drip; Replicate: stuck, aborted, "
        "create_hang, poll_500, poll_429, poll_reset; Eden AI v3 and Ollama: stream_error",
    )
    parser.add_argument(
        "--script", default="", help="comma-separated replies served first, in order"
    )
    parser.add_argument("--api-key", default=None, help="answer 401 unless this Bearer key is sent")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    fake = FAKES[args.vendor](
        host=args.host,
        port=args.port,
        latency_ms=args.latency_ms,
        api_key=args.api_key,
        default=args.default,
        verbose=args.verbose,
    )
    if args.script:
        fake.script([item for item in args.script.split(",") if item.strip()])

    def stop(signum: int, frame: FrameType | None) -> None:
        fake.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    fake.start()
    print(f"fake {args.vendor} listening on {fake.url} (Ctrl+C stops)", flush=True)
    try:
        while not fake.wait(0.5):
            pass
    finally:
        fake.stop()
        print(f"fake {args.vendor} stopped after {len(fake.requests)} requests", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
