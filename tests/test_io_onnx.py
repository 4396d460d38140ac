"""ONNX import/export, checked against onnxruntime's forward pass on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conftest import random_network  # noqa: E402
from reluopt.errors import ModelError, UnsupportedError  # noqa: E402
from reluopt.io import load_model  # noqa: E402
from reluopt.io.export import save_onnx, to_onnx_model  # noqa: E402
from reluopt.io.onnx import load_onnx  # noqa: E402

F32, F64 = TensorProto.FLOAT, TensorProto.DOUBLE


def run_ort(path, x_flat: np.ndarray) -> np.ndarray:
    """onnxruntime outputs (flattened per sample) for flattened inputs, one run per row."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    dtype = np.float64 if "double" in inp.type else np.float32
    shape = [d if isinstance(d, int) else 1 for d in inp.shape]
    return np.stack([sess.run(None, {inp.name: x.reshape(shape).astype(dtype)})[0].reshape(-1)
                     for x in x_flat])


def save(tmp_path, nodes, inputs, outputs, inits=(), name="model.onnx", opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def init(name, arr, dtype=np.float32):
    return numpy_helper.from_array(np.asarray(arr, dtype=dtype), name)


def vi(name, shape, elem=F32):
    return helper.make_tensor_value_info(name, elem, shape)


def assert_matches_ort(path, net, n=16, seed=0, scale=1.0, rtol=1e-5, atol=1e-5):
    x = scale * np.random.default_rng(seed).normal(size=(n, net.input_dim))
    np.testing.assert_allclose(net.forward(x), run_ort(path, x), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- shared data
def test_all_acasxu_nets_match_onnxruntime(shared_data):
    files = sorted((shared_data / "acasxu").glob("ACASXU_*.onnx"))
    assert len(files) == 45
    rng = np.random.default_rng(0)
    for path in files:
        net = load_onnx(path)
        assert net.describe() == "5-50-50-50-50-50-50-5", path.name
        assert net.meta["input_shape"] == [1, 1, 1, 5]
        # these files take normalised inputs (their Sub subtracts zeros); VNN-LIB boxes lie in
        # about [-0.5, 0.7]; wider points exercise more ReLU patterns
        x = rng.uniform(-1.0, 1.0, size=(4, 5))
        ref = run_ort(path, x)
        got = net.forward(x)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max(), err_msg=path.name)


@pytest.mark.parametrize("rel, describe, shape", [
    ("mnistfc/mnist-net_256x2.onnx", "784-256-256-10", [1, 784, 1]),
    ("gurobi_ml/mnist_model.onnx", "784-50-50-10", [None, 784]),
    ("vnncomp_test/test_nano.onnx", "1-1-1", [1]),
    ("vnncomp_test/test_tiny.onnx", "1-1-1", [1]),
    ("vnncomp_test/test_small.onnx", "1-2-2-1", [1]),
    ("vnncomp_test/test_sat.onnx", "5-50-50-50-50-50-50-5", [1, 1, 1, 5]),
    ("vnncomp_test/test_unsat.onnx", "5-50-50-50-50-50-50-5", [1, 1, 1, 5]),
])
def test_shared_nets_match_onnxruntime(shared_data, rel, describe, shape):
    path = shared_data / rel
    net = load_model(path)
    assert net.describe() == describe
    assert net.meta["input_shape"] == shape
    assert net.source == str(path)
    lo = 0.0 if "mnist" in rel else -2.0
    x = np.random.default_rng(1).uniform(lo, 1.0, size=(8, net.input_dim))
    np.testing.assert_allclose(net.forward(x), run_ort(path, x), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- op coverage
def test_gemm_attributes_and_normalisation_fold(tmp_path):
    rng = np.random.default_rng(2)
    mean, std = rng.normal(size=(1, 1, 2, 2)), rng.uniform(0.5, 2, size=(1, 1, 2, 2))
    A = rng.normal(size=(4, 6))       # used transposed (transB=1), alpha=0.5
    B = rng.normal(size=(6, 3))       # transA on the traced tensor's transpose
    C = rng.normal(size=(3,))
    nodes = [
        helper.make_node("Sub", ["x", "mean"], ["s"], name="sub"),
        helper.make_node("Div", ["s", "std"], ["d"], name="div"),
        helper.make_node("Mul", ["scale", "d"], ["m"], name="mul"),
        helper.make_node("Add", ["m", "shift"], ["a"], name="add"),
        helper.make_node("Flatten", ["a"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "A", "bA"], ["g1"], name="gemm1", transB=1, alpha=0.5, beta=2.0),
        helper.make_node("Relu", ["g1"], ["r1"], name="relu1"),
        helper.make_node("Transpose", ["r1"], ["t"], name="tr", perm=[1, 0]),
        helper.make_node("Gemm", ["t", "B", "C"], ["g2"], name="gemm2", transA=1),
        helper.make_node("Clip", ["g2", "zero", "cap"], ["c2"], name="clip"),
        helper.make_node("Identity", ["c2"], ["i2"], name="ident"),
        helper.make_node("MatMul", ["i2", "M"], ["mm"], name="matmul"),
        helper.make_node("Constant", [], ["k"], name="const", value=init("kv", [3.0])),
        helper.make_node("Sub", ["k", "mm"], ["y"], name="negsub"),
    ]
    inits = [init("mean", mean), init("std", std), init("scale", [2.0]), init("shift", [0.1]),
             init("A", A.T), init("bA", rng.normal(size=6)), init("B", B), init("C", C),
             init("zero", 0.0), init("cap", 1.5), init("M", rng.normal(size=(3, 2)))]
    path = save(tmp_path, nodes, [vi("x", [1, 1, 2, 2])], [vi("y", [1, 2])], inits)
    net = load_onnx(path)
    assert net.describe() == "4-6-3-2"
    assert [layer.activation for layer in net.layers] == ["relu", "clipped_relu", "identity"]
    assert net.layers[1].tau == pytest.approx(1.5)
    assert_matches_ort(path, net, scale=2.0)


def test_matmul_with_weights_on_the_left_and_reshape(tmp_path):
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["v"], name="reshape"),
        helper.make_node("MatMul", ["W", "v"], ["h"], name="mm"),  # W @ x on a 1-D vector
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Unsqueeze", ["r", "axes"], ["u"], name="unsq"),
        helper.make_node("MatMul", ["u", "W2"], ["o"], name="mm2"),
        helper.make_node("Squeeze", ["o", "axes"], ["y"], name="sq"),
    ]
    inits = [init("shape", [-1], np.int64), init("W", rng.normal(size=(5, 6))),
             init("axes", [0], np.int64), init("W2", rng.normal(size=(5, 2)))]
    path = save(tmp_path, nodes, [vi("x", [2, 3])], [vi("y", [2])], inits)
    net = load_onnx(path)
    assert net.describe() == "6-5-2" and net.meta["input_shape"] == [2, 3]
    assert_matches_ort(path, net)


def test_matmul_broadcasting_with_batched_weights(tmp_path):
    rng = np.random.default_rng(8)
    nodes = [
        helper.make_node("MatMul", ["x", "W1"], ["h1"], name="mm1"),      # (2,3) @ (3,4)
        helper.make_node("Relu", ["h1"], ["r1"], name="relu1"),
        helper.make_node("Neg", ["r1"], ["n1"], name="neg"),
        helper.make_node("MatMul", ["n1", "W2"], ["h2"], name="mm2"),     # (2,4) @ (2,4,5) -> (2,2,5)
        helper.make_node("Relu", ["h2"], ["r2"], name="relu2"),
        helper.make_node("Reshape", ["r2", "flat"], ["v"], name="flatten"),
        helper.make_node("Mul", ["v", "half"], ["v2"], name="scale"),
        helper.make_node("MatMul", ["v2", "W3"], ["y"], name="mm3"),     # (20,) @ (3,20,2) -> (3,2)
    ]
    inits = [init("W1", rng.normal(size=(3, 4))), init("W2", rng.normal(size=(2, 4, 5))),
             init("flat", [-1], np.int64), init("half", [0.5]), init("W3", rng.normal(size=(3, 20, 2)))]
    path = save(tmp_path, nodes, [vi("x", [2, 3])], [vi("y", [3, 2])], inits)
    net = load_onnx(path)
    assert net.describe() == "6-8-20-6" and net.meta["output_shape"] == [3, 2]
    assert_matches_ort(path, net, n=32)


def test_clip_without_max_is_relu_and_shape_chain_flatten(tmp_path):
    # the x.view(x.size(0), -1) pattern of old torch exports: Shape -> Gather -> Unsqueeze -> Concat
    rng = np.random.default_rng(4)
    nodes = [
        helper.make_node("Shape", ["x"], ["sh"], name="shape"),
        helper.make_node("Gather", ["sh", "zero_i"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "axes"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["f"], name="view"),
        helper.make_node("Gemm", ["f", "W", "b"], ["g"], name="fc1", transB=1),
        helper.make_node("Clip", ["g", "zero"], ["c"], name="clip_nomax"),
        helper.make_node("Gemm", ["c", "W2", "b2"], ["y"], name="fc2", transB=1),
    ]
    inits = [init("zero_i", 0, np.int64), init("axes", [0], np.int64), init("minus1", [-1], np.int64),
             init("W", rng.normal(size=(7, 12))), init("b", rng.normal(size=7)), init("zero", 0.0),
             init("W2", rng.normal(size=(3, 7))), init("b2", rng.normal(size=3))]
    path = save(tmp_path, nodes, [vi("x", ["N", 3, 4])], [vi("y", ["N", 3])], inits)
    net = load_onnx(path)
    assert [layer.activation for layer in net.layers] == ["relu", "identity"]
    assert net.meta["input_shape"] == [None, 3, 4]
    assert_matches_ort(path, net)


def test_opset10_clip_attributes(tmp_path):
    rng = np.random.default_rng(5)
    W, b = rng.normal(size=(3, 4)), rng.normal(size=4)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b"], ["g"], name="add"),
             helper.make_node("Clip", ["g"], ["y"], name="clip6", min=0.0, max=6.0)]
    path = save(tmp_path, nodes, [vi("x", [1, 3])], [vi("y", [1, 4])], [init("W", W), init("b", b)],
                opset=10)
    net = load_onnx(path)
    assert net.layers[0].activation == "clipped_relu" and net.layers[0].tau == 6.0
    assert_matches_ort(path, net, scale=4.0)


# ---------------------------------------------------------------- errors
def _single_op(tmp_path, op, name, extra_inits=(), **attrs):
    W = np.ones((3, 4))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
             helper.make_node(op, ["h", *[i.name for i in extra_inits]], ["y"], name=name, **attrs)]
    return save(tmp_path, nodes, [vi("x", [1, 3])], [vi("y", None)], [init("W", W), *extra_inits],
                name=f"{op.lower()}.onnx")


@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "Elu"])   # LeakyRelu is read since issue 13 (test_leaky_relu.py)
def test_non_relu_activation_is_unsupported(tmp_path, op):
    path = _single_op(tmp_path, op, "act1")
    with pytest.raises(UnsupportedError, match=rf"{op.lower()}\.onnx: node 'act1' has op type {op}, "
                       r"which reluopt does not support \(supported: .*Gemm"):
        load_onnx(path)


def test_conv_is_unsupported(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "K"], ["c"], name="conv1"),
             helper.make_node("Relu", ["c"], ["y"], name="relu")]
    path = save(tmp_path, nodes, [vi("x", [1, 1, 4, 4])], [vi("y", None)],
                [init("K", np.ones((2, 1, 3, 3)))], name="convnet.onnx")
    with pytest.raises(UnsupportedError, match=r"convnet\.onnx: node 'conv1' has op type Conv"):
        load_model(path)


def test_clip_with_nonzero_min_is_unsupported(tmp_path):
    path = _single_op(tmp_path, "Clip", "clipper", [init("lo", -1.0), init("hi", 1.0)])
    with pytest.raises(UnsupportedError, match=r"clip\.onnx: node 'clipper' \(Clip\): Clip with min=-1"):
        load_onnx(path)


def test_branching_graph_is_unsupported(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Add", ["r", "h"], ["y"], name="skip")]
    path = save(tmp_path, nodes, [vi("x", [1, 3])], [vi("y", None)], [init("W", np.ones((3, 3)))],
                name="res.onnx")
    with pytest.raises(UnsupportedError, match=r"res\.onnx: node 'skip' \(Add\): combines several"):
        load_onnx(path)


def test_side_branch_is_unsupported(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["r"], name="relu"),
             helper.make_node("Neg", ["h"], ["y"], name="side")]
    path = save(tmp_path, nodes, [vi("x", [1, 3])], [vi("y", None)], [init("W", np.ones((3, 3)))],
                name="fork.onnx")
    with pytest.raises(UnsupportedError, match=r"fork\.onnx: node 'side' \(Neg\) reads 'h'.*single chain"):
        load_onnx(path)


def test_output_not_at_end_of_chain_is_unsupported(tmp_path):
    nodes = [helper.make_node("MatMul", ["x", "W"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["r"], name="relu")]
    path = save(tmp_path, nodes, [vi("x", [1, 3])], [vi("h", None)], [init("W", np.ones((3, 3)))],
                name="early.onnx")
    with pytest.raises(UnsupportedError, match=r"early\.onnx: the graph output 'h' is not the end"):
        load_onnx(path)


def test_two_inputs_are_unsupported(tmp_path):
    nodes = [helper.make_node("Add", ["x", "z"], ["y"], name="add")]
    path = save(tmp_path, nodes, [vi("x", [1, 3]), vi("z", [1, 3])], [vi("y", None)], name="two.onnx")
    with pytest.raises(UnsupportedError, match=r"two\.onnx: the graph has 2 non-constant inputs"):
        load_onnx(path)


def test_corrupt_and_missing_files_raise_model_error(tmp_path):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(b"this is not a protobuf \x00\xff\x13" * 10)
    with pytest.raises(ModelError, match=r"garbage\.onnx"):
        load_onnx(bad)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match=r"empty\.onnx"):
        load_model(empty)
    with pytest.raises(ModelError, match=r"nothere\.onnx: no such file"):
        load_onnx(tmp_path / "nothere.onnx")


def test_nan_weights_name_file_and_node(tmp_path):
    W = np.ones((3, 4))
    W[1, 2] = np.nan
    nodes = [helper.make_node("Gemm", ["x", "W", "b"], ["h"], name="dense_3"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    path = save(tmp_path, nodes, [vi("x", [1, 3])], [vi("y", None)],
                [init("W", W), init("b", np.zeros(4))], name="nan.onnx")
    with pytest.raises(ModelError, match=r"nan\.onnx: node 'dense_3' \(Gemm\) uses 'W' with a non-finite"):
        load_onnx(path)


def test_overflow_to_inf_names_file_layer_and_nodes(tmp_path):
    nodes = [helper.make_node("Mul", ["x", "big"], ["s"], name="scale"),
             helper.make_node("MatMul", ["s", "W"], ["h"], name="fc"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    path = save(tmp_path, nodes, [vi("x", [1, 2], F64)], [vi("y", None, F64)],
                [init("big", [1e200], np.float64), init("W", np.full((2, 2), 1e200), np.float64)],
                name="overflow.onnx")
    with np.errstate(over="ignore"), pytest.raises(
            ModelError, match=r"overflow\.onnx: layer 0: weight matrix has a non-finite entry "
                              r".*\(ONNX nodes: scale, fc, relu\)"):
        load_onnx(path)


def test_division_by_zero_is_a_model_error(tmp_path):
    path = _single_op(tmp_path, "Div", "normalise", [init("sd", [1.0, 0.0, 1.0, 1.0])])
    with pytest.raises(ModelError, match=r"div\.onnx: node 'normalise' \(Div\) divides by zero"):
        load_onnx(path)


# ---------------------------------------------------------------- export
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_export_round_trip_through_onnxruntime(tmp_path, dtype):
    base = random_network([4, 9, 7, 3], seed=6)
    layers = list(base.layers)
    layers[1] = type(layers[1])(layers[1].W, layers[1].b, "clipped_relu", 0.8)
    net = base.with_layers(layers)
    path = save_onnx(net, tmp_path / f"net_{dtype}.onnx", dtype=dtype)
    onnx.checker.check_model(onnx.load(str(path)))
    tol = 1e-12 if dtype == "float64" else 1e-5
    assert_matches_ort(path, net, n=32, scale=2.0, rtol=tol, atol=tol)
    back = load_onnx(path)
    assert [lay.activation for lay in back.layers] == ["relu", "clipped_relu", "identity"]
    x = np.random.default_rng(7).normal(size=(20, 4))
    np.testing.assert_allclose(back.forward(x), net.forward(x), rtol=tol, atol=tol)
    if dtype == "float64":
        for a, b in zip(back.layers, net.layers, strict=True):
            np.testing.assert_array_equal(a.W, b.W)


def test_export_rejects_bad_dtype():
    with pytest.raises(ModelError, match="dtype"):
        to_onnx_model(random_network([2, 3, 1]), dtype="int8")
