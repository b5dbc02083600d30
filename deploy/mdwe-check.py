"""Does the TFLite runtime survive the unit's MemoryDenyWriteExecute=yes?

    python deploy/mdwe-check.py MODEL.tflite [MODEL.tflite ...]

Installs the seccomp filter systemd uses for MemoryDenyWriteExecute (no mmap with both
PROT_WRITE and PROT_EXEC, no mprotect/pkey_mprotect adding PROT_EXEC), checks that it bites,
then imports the daemon's native dependencies and runs each model a few times on XNNPACK.
A JIT would die here with EPERM. Needs python3-seccomp (apt); run it natively (under
qemu-user the filter would also bind qemu's own code generator).
"""
import ctypes
import errno
import mmap
import sys

sys.path.append("/usr/lib/python3/dist-packages")  # apt's python3-seccomp from a venv
import seccomp  # noqa: E402

W, X = mmap.PROT_WRITE, mmap.PROT_EXEC
f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
f.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, W | X, W | X))
f.add_rule(seccomp.ERRNO(errno.EPERM), "mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, X, X))
f.add_rule(seccomp.ERRNO(errno.EPERM), "pkey_mprotect", seccomp.Arg(2, seccomp.MASKED_EQ, X, X))
f.load()

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
p = libc.mmap(None, 4096, mmap.PROT_READ | W | X, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
assert p == ctypes.c_void_p(-1).value and ctypes.get_errno() == errno.EPERM, "the filter does not bite"

import numpy as np  # noqa: E402
import scipy.signal  # noqa: E402,F401
import av  # noqa: E402,F401
import PIL.Image  # noqa: E402,F401
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

for path in sys.argv[1:]:
    it = Interpreter(model_path=path, num_threads=2)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    if np.issubdtype(d["dtype"], np.integer):
        info = np.iinfo(d["dtype"])
        x = np.random.randint(info.min, info.max, size=d["shape"], dtype=d["dtype"])
    else:
        x = np.random.rand(*d["shape"]).astype(d["dtype"])
    it.set_tensor(d["index"], x)
    for _ in range(3):
        it.invoke()
    print(f"ok under MemoryDenyWriteExecute: {path} ({d['dtype'].__name__} input {list(d['shape'])})")
