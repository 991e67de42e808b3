"""refq.interop — refq programs and golden cases in other systems' formats (qonnx/: QONNX
graphs run by qonnx's executor). Each subpackage imports its optional extra only when used."""
