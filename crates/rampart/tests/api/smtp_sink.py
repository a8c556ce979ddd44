"""A local SMTP sink for the black-box tests (driven by mail_sink.rs).

Listens on 127.0.0.1 at a free port, prints `PORT <n>`, then one JSON line per received message:
{"to": [envelope recipients], "from": "<From header>", "subject": "...", "body": "<text/plain>"}.
Runs until stdin closes or the process is killed.
"""

import email
import email.policy
import json
import socket
import sys
import threading

from aiosmtpd.controller import Controller

_print_lock = threading.Lock()


def _emit(line):
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _plain_body(msg):
    part = msg.get_body(preferencelist=("plain",))
    if part is None:
        part = msg.get_body()
    if part is None:
        return ""
    try:
        return part.get_content()
    except (KeyError, LookupError):
        payload = part.get_payload(decode=True) or b""
        return payload.decode("utf-8", "replace")


class Handler:
    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        _emit(
            json.dumps(
                {
                    "to": list(envelope.rcpt_tos),
                    "from": str(msg.get("from", envelope.mail_from or "")),
                    "subject": str(msg.get("subject", "")),
                    "body": _plain_body(msg),
                }
            )
        )
        return "250 Message accepted for delivery"


def _free_port():
    # aiosmtpd's Controller cannot report the port the OS picked for port 0, so take one here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    # An explicit port (argv[1]) lets a test start the sink where a server already sends.
    port = int(sys.argv[1]) if len(sys.argv) > 1 else _free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    _emit("PORT %d" % controller.port)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
