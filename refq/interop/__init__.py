"""refq.interop — refq programs and golden cases in other systems' formats, and back.

``refq.interop.qonnx``: a lowered :class:`~refq.program.Program` (or one kernel case) as a
QONNX graph run by qonnx's executor. It needs the ``qonnx`` extra.

``refq.interop.tosa``: a lowered :class:`~refq.program.Program` (or one kernel case) as a
TOSA 1.x graph — flatbuffer, MLIR text and conformance-test folders — and TOSA graphs read
back as Programs. It needs the ``tosa`` extra (``pip install 'refq[tosa]'``).

Each subpackage imports its optional extra only when used; nothing in refq's core imports them.
"""
