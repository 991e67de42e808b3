"""Built-in backends: ``reference`` (refq itself), ``torch`` (CPU/CUDA), ``onnxruntime``,
``rtl`` (Verilog under Icarus), and two deliberately wrong ones used as negative controls."""
