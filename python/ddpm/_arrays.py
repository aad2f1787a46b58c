"""Arrays in and out of the engine: the caller's framework and device, no copies.

The principal array of a call (x0 for forward, x_t for step; out, initial or
like for sample) decides where the call runs: its framework (NumPy, PyTorch,
CuPy, or any other DLPack producer), its device (the CPU or a CUDA device) and,
on a CUDA device, the stream: the caller's current one (PyTorch's
torch.cuda.current_stream(), CuPy's get_current_stream()); for other DLPack
producers the legacy default stream, asked for through the DLPack stream
protocol.

Float arrays that are float32 and C-contiguous pass as they are. Other
floating-point arrays are converted, with a CopyWarning saying so; arrays of
any other dtype go on to the engine, which refuses them with a TypeError that
names the argument. Results are allocated in the principal array's framework
and on its device; outputs given with out= must already be float32,
C-contiguous and writable (writing into a converted copy would lose the result).
"""

import numbers
import warnings

import numpy as np

# DLPack device types (dlpack.h).
_DL_CPU, _DL_CUDA, _DL_CUDA_HOST, _DL_CUDA_MANAGED = 1, 2, 3, 13
_HOST_DEVICES = (_DL_CPU, _DL_CUDA_HOST)
_CUDA_DEVICES = (_DL_CUDA, _DL_CUDA_MANAGED)
# The DLPack stream value of CUDA's legacy default stream.
_DLPACK_LEGACY_STREAM = 1

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class CopyWarning(UserWarning):
    """An input was converted to float32 C order, which copied it."""


def framework_of(array):
    """'numpy', 'torch' or 'cupy' for arrays of those frameworks, else None."""
    root = type(array).__module__.partition(".")[0]
    return root if root in ("numpy", "torch", "cupy") else None


def _warn_copy(name, dtype, contiguous):
    what = str(dtype) if contiguous else f"{dtype} and not C-contiguous"
    warnings.warn(
        f"ddpm: {name} is {what}; it was converted to a float32 C-contiguous copy "
        "(pass float32 C-contiguous arrays to avoid the copy)",
        CopyWarning,
        stacklevel=5,
    )


def _numpy_floats(a, name):
    if a.dtype == np.float32 and a.flags.c_contiguous:
        return a
    if a.dtype.kind != "f":
        return a  # the engine refuses it, naming the dtype
    _warn_copy(name, a.dtype, a.flags.c_contiguous)
    return np.ascontiguousarray(a, dtype=np.float32)


def _torch_floats(t, name):
    import torch

    if t.requires_grad:
        t = t.detach()  # sampling never needs gradients; DLPack refuses tensors that do
    if t.dtype == torch.float32 and t.is_contiguous():
        return t
    if not t.is_floating_point():
        return t
    _warn_copy(name, t.dtype, t.is_contiguous())
    return t.to(torch.float32).contiguous()


def _cupy_floats(a, name):
    import cupy

    if a.dtype == cupy.float32 and a.flags.c_contiguous:
        return a
    if a.dtype.kind != "f":
        return a
    _warn_copy(name, a.dtype, a.flags.c_contiguous)
    return cupy.ascontiguousarray(a, dtype=cupy.float32)


def _data_pointer(array):
    framework = framework_of(array)
    if framework == "numpy":
        return array.ctypes.data
    if framework == "torch":
        return array.data_ptr()
    if framework == "cupy":
        return array.data.ptr
    return None


class Frame:
    """Where a call runs: framework, CUDA device (None for host memory), stream."""

    __slots__ = ("framework", "cuda_device", "stream", "torch_device")

    def __init__(self, framework="numpy", cuda_device=None, stream=0, torch_device=None):
        self.framework = framework
        self.cuda_device = cuda_device
        self.stream = stream
        self.torch_device = torch_device

    @classmethod
    def of(cls, array, name):
        """The frame of a call whose principal array is `array`."""
        framework = framework_of(array)
        if framework == "numpy":
            return cls()
        if framework == "torch":
            device = array.device
            if device.type == "cpu":
                return cls("torch", torch_device=device)
            if device.type == "cuda":
                import torch

                stream = torch.cuda.current_stream(device).cuda_stream
                return cls("torch", device.index, stream, device)
            raise ValueError(f"{name} is on the PyTorch device '{device}'; ddpm takes CPU and CUDA tensors")
        if framework == "cupy":
            import cupy

            with cupy.cuda.Device(array.device.id):
                stream = cupy.cuda.get_current_stream().ptr
            return cls("cupy", array.device.id, stream)
        if hasattr(array, "__dlpack_device__"):
            kind, device_id = array.__dlpack_device__()
            if kind in _HOST_DEVICES:
                return cls()
            if kind in _CUDA_DEVICES:
                return cls("dlpack", int(device_id), 0)
            raise ValueError(f"{name} is on DLPack device type {int(kind)}; ddpm takes CPU and CUDA arrays")
        return cls()  # the buffer protocol or a sequence: read through NumPy

    @property
    def on_device(self):
        return self.cuda_device is not None

    def describe(self):
        return "cpu" if self.cuda_device is None else f"cuda:{self.cuda_device}"

    def floats(self, array, name):
        """`array` as float32 C order in its own framework (see the module's doc)."""
        framework = framework_of(array)
        if framework == "numpy":
            return _numpy_floats(array, name)
        if framework == "torch":
            return _torch_floats(array, name)
        if framework == "cupy":
            return _cupy_floats(array, name)
        if hasattr(array, "__dlpack_device__"):
            kind, _ = array.__dlpack_device__()
            if kind in _HOST_DEVICES:
                return _numpy_floats(np.from_dlpack(array), name)
            # The engine checks dtype and order of what the capsule describes.
            return array.__dlpack__(stream=_DLPACK_LEGACY_STREAM)
        return _numpy_floats(np.asarray(array), name)

    def output(self, out, name, shape):
        """A result array: `out` as given (checked), or a new one of `shape`."""
        if out is None:
            return self.empty(shape)
        framework = framework_of(out)
        if framework == "numpy" and not out.flags.writeable:
            raise ValueError(f"{name} is read-only")
        if framework == "torch" and out.requires_grad:
            raise ValueError(f"{name} requires grad; pass a tensor without (e.g. out.detach())")
        if framework is None:
            if not hasattr(out, "__dlpack__"):
                raise TypeError(f"{name} must be an array (NumPy, PyTorch, CuPy or DLPack), got {type(out).__name__}")
            return out.__dlpack__(stream=_DLPACK_LEGACY_STREAM)
        return out

    def empty(self, shape):
        """A new float32 array of `shape` in this frame's framework and device."""
        if self.framework == "numpy":
            return np.empty(shape, np.float32)
        if self.framework == "torch":
            import torch

            return torch.empty(shape, dtype=torch.float32, device=self.torch_device)
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.cuda_device):
                return cupy.empty(shape, cupy.float32)
        raise TypeError(
            "ddpm allocates results with NumPy, PyTorch or CuPy; for device arrays of other "
            "frameworks pass the result arrays with out="
        )

    def ints(self, values, name):
        """Whole numbers (per-sample steps, class labels) as int32 where the call runs."""
        framework = framework_of(values)
        if self.framework == "torch":
            import torch

            t = values if framework == "torch" else torch.as_tensor(np.asarray(values))
            if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise TypeError(f"{name} must be an int or an integer array, got {t.dtype}")
            if t.dtype != torch.int32 and t.numel() > 0:
                _check_int32_range(int(t.min()), int(t.max()), name)
            return t.to(device=self.torch_device, dtype=torch.int32).contiguous()
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.cuda_device):
                a = cupy.asarray(values)
                _check_integers(a.dtype, name)
                if a.dtype != cupy.int32 and a.size > 0:
                    _check_int32_range(int(a.min()), int(a.max()), name)
                return cupy.ascontiguousarray(a, dtype=cupy.int32)
        if self.framework == "dlpack":
            return values.__dlpack__(stream=_DLPACK_LEGACY_STREAM) if hasattr(values, "__dlpack__") else values
        a = np.asarray(values)
        _check_integers(a.dtype, name)
        if a.dtype != np.int32 and a.size > 0:
            _check_int32_range(int(a.min()), int(a.max()), name)
        return np.ascontiguousarray(a, dtype=np.int32)

    def timestep(self, t, name="t"):
        """(step, None) for one step for the batch, (-1, int32 array) for one per sample."""
        if isinstance(t, bool) or isinstance(t, np.bool_):
            raise TypeError(f"{name} must be an int or an integer array, got bool")
        if isinstance(t, numbers.Integral):
            return int(t), None
        if isinstance(t, numbers.Real):
            raise TypeError(f"{name} must be an int or an integer array, got {type(t).__name__}")
        if getattr(t, "ndim", None) == 0:
            return int(self.ints(t, name)), None
        return -1, self.ints(t, name)

    def copy_into(self, destination, source, name):
        """destination[...] = source, unless they are the same memory already."""
        if tuple(destination.shape) != tuple(source.shape):
            raise ValueError(
                f"shape mismatch: {name} has shape {tuple(source.shape)} but out has shape {tuple(destination.shape)}"
            )
        pointer = _data_pointer(source)
        if pointer is not None and pointer == _data_pointer(destination):
            return
        if self.framework == "torch":
            destination.copy_(source)
        elif self.framework == "cupy":
            import cupy

            cupy.copyto(destination, source)
        elif self.framework == "numpy":
            np.copyto(destination, source)
        else:
            raise TypeError(f"for device arrays of {type(source).__name__} give {name} as out= too (sampling in place)")


def _check_integers(dtype, name):
    if dtype.kind not in "iu":
        raise TypeError(f"{name} must be an int or an integer array, got {dtype}")


def _check_int32_range(lo, hi, name):
    if lo < _INT32_MIN or hi > _INT32_MAX:
        raise ValueError(f"{name} holds values outside int32 ({lo} .. {hi})")
