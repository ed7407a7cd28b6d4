"""Test helpers: ADT messages built with hl7apy (an HL7 implementation independent of the
python-hl7 parser the listener uses), a real MLLP listener on a free port, and a sender."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading

from hl7apy.core import Message
from hl7apy.parser import parse_message

STRUCTURE = {"A01": "ADT_A01", "A02": "ADT_A02", "A03": "ADT_A03", "A08": "ADT_A01",
             "A11": "ADT_A09", "A13": "ADT_A01"}
_ids = itertools.count(1)


def adt(event: str, *, mrn="00100001", adm="ZY202603000001", name="张^三", sex="M",
        birth="19600301", dept="1001", ward="W12", attending="D0002^王^芳", admitting="",
        consulting="", admit_at="20260301093000", discharge_at="", disposition="",
        event_at="20260301093000", control_id: str | None = None, sender="HIS",
        patient_class="I", diagnoses=(), id_number="", mtype="ADT") -> str:
    """One ADT message in ER7 (segments separated by CR)."""
    m = Message(STRUCTURE[event], version="2.5")
    m.msh.msh_3, m.msh.msh_4, m.msh.msh_5, m.msh.msh_6 = sender, "H1", "BINGAN", "H1"
    m.msh.msh_7 = event_at
    m.msh.msh_9 = f"{mtype}^{event}^{STRUCTURE[event]}"
    m.msh.msh_10 = control_id or f"C{next(_ids):08d}"
    m.msh.msh_11 = "P"
    m.evn.evn_1 = event
    m.evn.evn_2 = event_at
    ids = f"{mrn}^^^H1^MR" + (f"~{id_number}^^^H1^ID" if id_number else "")
    m.pid.pid_3 = ids
    m.pid.pid_5 = name
    m.pid.pid_7 = birth
    m.pid.pid_8 = sex
    m.pv1.pv1_2 = patient_class
    m.pv1.pv1_3 = f"{ward}^301^2"
    if attending:
        m.pv1.pv1_7 = attending
    if consulting:
        m.pv1.pv1_9 = consulting
    m.pv1.pv1_10 = dept
    if admitting:
        m.pv1.pv1_17 = admitting
    m.pv1.pv1_19 = adm
    if disposition:
        m.pv1.pv1_36 = disposition
    if admit_at:
        m.pv1.pv1_44 = admit_at
    if discharge_at:
        m.pv1.pv1_45 = discharge_at
    for i, (code, text, kind) in enumerate(diagnoses, start=1):
        dg = m.add_segment("DG1")
        dg.dg1_1 = str(i)
        dg.dg1_3 = f"{code}^{text}^ICD10"
        dg.dg1_6 = kind
        dg.dg1_15 = "1" if i == 1 else "2"
    return m.to_er7()


def merge(survivor: str, merged: str, *, control_id: str | None = None,
          event_at="20260310120000") -> str:
    m = Message("ADT_A39", version="2.5")
    m.msh.msh_3, m.msh.msh_4, m.msh.msh_5 = "HIS", "H1", "BINGAN"
    m.msh.msh_7 = event_at
    m.msh.msh_9 = "ADT^A40^ADT_A39"
    m.msh.msh_10 = control_id or f"C{next(_ids):08d}"
    m.msh.msh_11 = "P"
    m.evn.evn_2 = event_at
    g = m.add_group("ADT_A39_PATIENT")
    g.pid.pid_3 = f"{survivor}^^^H1^MR"
    g.pid.pid_5 = "张^三"
    g.mrg.mrg_1 = f"{merged}^^^H1^MR"
    return m.to_er7()


class Listener:
    """``core`` runtime's MLLP listener running on its own event loop thread."""

    def __init__(self, rt) -> None:
        from bingan_hl7v2.server import start

        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = self.loop.run_until_complete(start(rt, "127.0.0.1", 0))
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert ready.wait(20), "listener did not start"

    def close(self) -> None:
        async def shutdown() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(20)
        # a loop left open is finalised later by the garbage collector, whose warning import
        # can land inside another thread's import (KeyError in importlib on CPython < 3.12)
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


class Sender:
    """One MLLP connection; ``send`` returns the parsed ACK (hl7apy) and its raw text."""

    def __init__(self, port: int, encoding: str = "utf-8") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.encoding = encoding
        self.buf = b""

    def send_raw(self, payload: bytes) -> str:
        self.sock.sendall(payload)
        while b"\x1c\r" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "listener closed the connection"
            self.buf += chunk
        block, _, self.buf = self.buf.partition(b"\x1c\r")
        assert block.startswith(b"\x0b")
        return block[1:].decode(self.encoding)

    def send(self, er7: str):
        text = self.send_raw(b"\x0b" + er7.encode(self.encoding) + b"\x1c\r")
        ack = parse_message(text.replace("\n", "\r"), find_groups=False)
        return ack, text

    def close(self) -> None:
        self.sock.close()


def msa(ack) -> tuple[str, str, str]:
    """(MSA-1 code, MSA-2 control id, MSA-3 text) of a parsed ACK."""
    return (ack.msa.msa_1.to_er7(), ack.msa.msa_2.to_er7(),
            ack.msa.msa_3.to_er7() if ack.msa.msa_3 else "")
