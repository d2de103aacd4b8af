"""GCFAggMVC: the structure-guided loss against plain-numpy formulas, the GCFAgg layer against
torch's own encoder layer, the ablations, evaluation order, seeding and end to end."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import adjusted_rand_score

from mvbench.errors import MvbenchError
from mvbench.nn import instance_contrastive_loss, kmeans
from mvbench.options import resolve_options
from mvbench.progress import QuietProgress
from mvbench.registry import build_registry
from mvbench.results import read_records
from mvbench.specs import MethodInput
from mvbench_plugins.methods import gcfaggmvc
from mvbench_plugins.methods.gcfaggmvc import SPEC, Config, common_embedding, evaluation_order, fine_tune_losses
from mvbench_plugins.methods.gcfaggmvc_parts import (
    ContrastMasks,
    GCFAggLayer,
    GCFAggNet,
    attention_statistics,
    structure_guided_contrastive_loss,
)

DIMS = (5, 7)
K = 3
TINY = {"hidden": [16], "feature_dim": 8, "high_dim": 4, "ffn_dim": 8, "batch_size": 32, "pre_epochs": 2,
        "fine_tune_epochs": 2, "kmeans_n_init": 3, "eval_batch_size": 16}


def _cfg(**options) -> Config:
    return Config.from_options({**TINY, **options})


def _blobs(n_per: int = 30, seed: int = 0, sorted_by_class: bool = False) -> tuple[list[torch.Tensor], np.ndarray]:
    """K separated clusters seen through two views; optionally stored sorted by class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(K).repeat_interleave(n_per)
    if not sorted_by_class:
        y = y[torch.randperm(len(y), generator=g)]
    views = []
    for d in DIMS:
        centers = 3.0 * torch.randn(K, d, generator=g)
        views.append(centers[y] + 0.3 * torch.randn(len(y), d, generator=g))
    return views, y.numpy()


def _input(views, seed=0, precision="fp32", **options) -> MethodInput:
    return MethodInput(views=views, mask=torch.ones(len(views[0]), len(views), dtype=torch.bool),
                       n_clusters=K, options={**TINY, **options}, seed=seed, device=torch.device("cpu"),
                       precision=precision, progress=QuietProgress())


def _model(cfg: Config | None = None, seed: int = 0) -> GCFAggNet:
    torch.manual_seed(seed)
    return gcfaggmvc.build_model(DIMS, cfg or _cfg())


def _batch(b: int = 12, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, d, generator=g) for d in DIMS]


# --- the structure-guided contrastive loss --------------------------------------------------

def _numpy_sgcl(hv, hc, s, tau, weighting):
    """Anchor by anchor, straight from the definition."""
    hv, hc, s = (np.asarray(a, dtype=np.float64) for a in (hv, hc, s))
    b = len(hv)
    h = np.concatenate([hv, hc])
    w = 1.0 - np.block([[s, s], [s, s]])
    losses = []
    for a in range(2 * b):
        pos = (a + b) % (2 * b)
        terms = [math.exp(h[a] @ h[pos] / tau)]
        for c in range(2 * b):
            if c in (a, pos):
                continue
            logit = h[a] @ h[c] / tau
            if weighting == "logit":
                terms.append(math.exp(w[a, c] * logit))
            elif weighting == "exp":
                terms.append(w[a, c] * math.exp(logit))
            else:
                terms.append(math.exp(logit))
        losses.append(-math.log(terms[0] / sum(terms)))
    return sum(losses) / len(losses)


def test_sgcl_on_a_two_sample_case_by_hand():
    hv = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    hc = torch.tensor([[0.6, 0.8], [0.8, 0.6]])
    s = torch.tensor([[0.7, 0.3], [0.4, 0.6]])
    # tau = 0.5: h = [hv; hc]; sims/tau: (0,1)=0, (0,2)=1.2 pos, (0,3)=1.6; (1,2)=1.6, (1,3)=1.2 pos;
    # (2,3)=1.92. W = 1 - [[S,S],[S,S]]: W[0,1]=.7 W[0,3]=.7, W[1,0]=.6 W[1,2]=.6,
    # W[2,1]=.7 W[2,3]=.7, W[3,0]=.6 W[3,2]=.6.
    by_hand = np.mean([
        -1.2 + math.log(math.exp(1.2) + math.exp(0.7 * 0.0) + math.exp(0.7 * 1.6)),   # anchor 0
        -1.2 + math.log(math.exp(1.2) + math.exp(0.6 * 0.0) + math.exp(0.6 * 1.6)),   # anchor 1
        -1.2 + math.log(math.exp(1.2) + math.exp(0.7 * 1.6) + math.exp(0.7 * 1.92)),  # anchor 2
        -1.2 + math.log(math.exp(1.2) + math.exp(0.6 * 1.6) + math.exp(0.6 * 1.92)),  # anchor 3
    ])
    got = structure_guided_contrastive_loss(hv, hc, s, 0.5)
    assert got.item() == pytest.approx(by_hand, rel=1e-6)
    assert by_hand == pytest.approx(_numpy_sgcl(hv, hc, s, 0.5, "logit"), rel=1e-6)


@pytest.mark.parametrize("weighting", ["logit", "exp", "none"])
def test_sgcl_matches_numpy_on_three_samples(weighting):
    g = torch.Generator().manual_seed(3)
    hv = F.normalize(torch.randn(3, 4, generator=g), dim=1)
    hc = F.normalize(torch.randn(3, 4, generator=g), dim=1)
    s = torch.softmax(torch.randn(3, 3, generator=g), dim=1)
    got = structure_guided_contrastive_loss(hv, hc, s, 0.5, weighting=weighting, masks=ContrastMasks.build(3))
    assert got.item() == pytest.approx(_numpy_sgcl(hv, hc, s, 0.5, weighting), rel=1e-5)


def test_unweighted_sgcl_is_nt_xent():
    g = torch.Generator().manual_seed(4)
    hv, hc = (F.normalize(torch.randn(6, 4, generator=g), dim=1) for _ in range(2))
    s = torch.softmax(torch.randn(6, 6, generator=g), dim=1)
    plain = instance_contrastive_loss(hv, hc, 0.5)
    torch.testing.assert_close(structure_guided_contrastive_loss(hv, hc, s, 0.5, weighting="none"), plain)
    torch.testing.assert_close(structure_guided_contrastive_loss(hv, hc, None, 0.5), plain)
    # S = 0 leaves every weight 1: the weighted loss is the plain one too
    torch.testing.assert_close(structure_guided_contrastive_loss(hv, hc, torch.zeros(6, 6), 0.5), plain)


def test_contrast_masks():
    masks = ContrastMasks.build(3)
    assert masks.positive.tolist() == [3, 4, 5, 0, 1, 2]
    assert torch.equal(masks.is_self, torch.eye(6, dtype=torch.bool))
    assert masks.is_negative.sum(dim=1).tolist() == [4] * 6
    assert not (masks.is_negative & masks.is_self).any()
    assert not masks.is_negative[torch.arange(6), masks.positive].any()


def test_attention_statistics():
    uniform = torch.full((4, 4), 0.25)
    onehot = torch.eye(4)
    assert attention_statistics(uniform).tolist() == pytest.approx([math.log(4), 0.25])
    assert attention_statistics(onehot).tolist() == pytest.approx([0.0, 1.0])


# --- the GCFAgg layer -----------------------------------------------------------------------

def _stock_and_ours(attn_input: str, dim: int = 6, ffn: int = 5):
    torch.manual_seed(0)
    stock = torch.nn.TransformerEncoderLayer(d_model=dim, nhead=1, dim_feedforward=ffn, dropout=0.1)
    ours = GCFAggLayer(dim, ffn_dim=ffn, dropout=0.1, attn_input=attn_input)
    with torch.no_grad():
        ours.qkr.weight.copy_(stock.self_attn.in_proj_weight)
        ours.qkr.bias.copy_(torch.randn(3 * dim))  # non-zero, to check where the biases enter
        stock.self_attn.in_proj_bias.copy_(ours.qkr.bias)
        stock.self_attn.out_proj.bias.copy_(torch.randn(dim))
        for mine, theirs in [(ours.out_proj, stock.self_attn.out_proj), (ours.linear1, stock.linear1),
                             (ours.linear2, stock.linear2), (ours.norm1, stock.norm1), (ours.norm2, stock.norm2)]:
            mine.load_state_dict(theirs.state_dict())
        for norm in (ours.norm1, ours.norm2):
            norm.weight.add_(torch.rand(dim))
            norm.bias.add_(torch.randn(dim))
        stock.norm1.load_state_dict(ours.norm1.state_dict())
        stock.norm2.load_state_dict(ours.norm2.state_dict())
    return stock.eval(), ours.eval()


def test_raw_input_equals_torch_encoder_layer_across_samples():
    stock, ours = _stock_and_ours("raw")
    z = torch.randn(9, 6)  # 2-D input: the 9 samples are one sequence, as in the reference
    with torch.no_grad():
        out = ours(z)
        _, weights = stock.self_attn(z, z, z, need_weights=True)
        torch.testing.assert_close(out.z_hat, stock(z), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.s, weights)
    assert out.s.shape == (9, 9)
    torch.testing.assert_close(out.s.sum(dim=1), torch.ones(9))


def test_ln_input_is_the_docx_patch():
    stock, ours = _stock_and_ours("ln")
    z = torch.randn(9, 6)
    with torch.no_grad():
        out = ours(z)
        u = stock.norm1(z)
        attended, weights = stock.self_attn(u, u, u, need_weights=True)
        y = stock.norm1(z + attended)  # the same LN1 closes the residual
        expected = stock.norm2(y + stock.linear2(torch.relu(stock.linear1(y))))
    torch.testing.assert_close(out.z_hat, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.s, weights)


def test_attention_block_is_s_times_r_and_builds_nothing_else():
    torch.manual_seed(0)
    layer = GCFAggLayer(6, attn_input="ln", block="attention").eval()
    assert not hasattr(layer, "out_proj") and not hasattr(layer, "linear1")
    z = torch.randn(7, 6)
    with torch.no_grad():
        out = layer(z)
        r = layer.qkr(layer.norm1(z))[:, 12:]
    torch.testing.assert_close(out.z_hat, out.s @ r)
    raw = GCFAggLayer(6, attn_input="raw", block="attention")
    assert raw.norm1 is None


def test_returned_s_is_after_dropout_in_training():
    torch.manual_seed(0)
    layer = GCFAggLayer(6, dropout=0.5).train()
    out = layer(torch.randn(40, 6))
    kept = out.s != 0
    assert 0 < kept.float().mean() < 1
    torch.testing.assert_close(out.s[kept], out.attention[kept] / 0.5)
    torch.testing.assert_close(out.attention.sum(dim=1), torch.ones(40))


# --- losses, ablations and the network ------------------------------------------------------

def test_full_loss_parts_and_every_parameter_is_trained():
    model = _model()
    parts, attention = fine_tune_losses(model, _batch(), _cfg())
    assert set(parts) == {"contrastive", "rec"} and attention.shape == (12, 12)
    sum(parts.values()).backward()
    unused = [name for name, p in model.named_parameters() if p.grad is None]
    assert unused == []  # no idle transformer copy in the optimiser
    assert not any(isinstance(m, torch.nn.TransformerEncoder) for m in model.modules())


def test_encoders_run_once_per_step():
    model = _model()
    calls = []
    for v, ae in enumerate(model.autoencoders.views):
        ae.encoder.register_forward_hook(lambda *_, v=v: calls.append(v))
    fine_tune_losses(model, _batch(), _cfg())
    assert calls == [0, 1]


def _forbid(module, name):
    module.register_forward_hook(lambda *_: (_ for _ in ()).throw(AssertionError(f"{name} ran")))


def test_lambda_c_zero_removes_the_contrast_and_runs_no_head():
    model = _model()
    _forbid(model.gcfagg, "GCFAgg")
    _forbid(model.view_head, "view head")
    _forbid(model.common_head, "common head")
    parts, attention = fine_tune_losses(model, _batch(), _cfg(lambda_c=0.0))
    assert set(parts) == {"rec"} and attention is None


def test_recon_off_removes_reconstruction_and_never_decodes():
    model = _model().eval()
    full, _ = fine_tune_losses(model, _batch(), _cfg())
    for ae in model.autoencoders.views:
        _forbid(ae.decoder, "decoder")
    parts, _ = fine_tune_losses(model, _batch(), _cfg(recon_in_finetune=False))
    assert set(parts) == {"contrastive"}
    torch.testing.assert_close(parts["contrastive"], full["contrastive"])


def test_sg_weight_none_is_the_plain_contrast_and_lambda_scales_it():
    model = _model().eval()  # no dropout: S is deterministic
    xs = _batch()
    zs = model.autoencoders.encode(xs)
    h_common, _ = model.common_features(zs)
    plain = sum(instance_contrastive_loss(h, h_common, 0.5) for h in model.view_features(zs))
    parts, _ = fine_tune_losses(model, xs, _cfg(sg_weight="none"))
    torch.testing.assert_close(parts["contrastive"], plain)
    weighted, _ = fine_tune_losses(model, xs, _cfg())
    assert not torch.allclose(weighted["contrastive"], plain)
    doubled, _ = fine_tune_losses(model, xs, _cfg(lambda_c=2.0))
    torch.testing.assert_close(doubled["contrastive"], 2 * weighted["contrastive"])


def test_concat_aggregation_has_no_layer_and_no_structure_weight():
    cfg = _cfg(aggregation="concat")
    model = _model(cfg).eval()
    assert model.gcfagg is None
    xs = _batch()
    zs = model.autoencoders.encode(xs)
    h_common = F.normalize(model.common_head(torch.cat(zs, dim=1)), dim=1)
    plain = sum(instance_contrastive_loss(h, h_common, 0.5) for h in model.view_features(zs))
    parts, attention = fine_tune_losses(model, xs, cfg)
    assert attention is None
    torch.testing.assert_close(parts["contrastive"], plain)
    full = _model().eval()
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in full.parameters())


def test_detach_s_keeps_the_value_and_changes_the_gradient():
    xs = _batch()
    grads, values = [], []
    for detach in (False, True):
        model = _model().eval()
        parts, _ = fine_tune_losses(model, xs, _cfg(detach_S=detach, recon_in_finetune=False))
        parts["contrastive"].backward()
        values.append(parts["contrastive"].detach())
        grads.append(model.gcfagg.qkr.weight.grad.clone())
    torch.testing.assert_close(values[0], values[1])
    assert not torch.allclose(grads[0], grads[1])


# --- evaluation order -----------------------------------------------------------------------

def test_permuted_evaluation_returns_rows_in_file_order():
    cfg = _cfg(eval_batch_size=8)
    model = _model().eval()
    xs = _batch(b=20)
    order = evaluation_order(20, cfg, seed=5, device=torch.device("cpu"))
    got, stats = common_embedding(model, xs, cfg, order, "fp32")
    expected = torch.empty_like(got)
    with torch.no_grad():
        for idx in order.split(8):
            expected[idx] = model.common_features(model.autoencoders.encode([x[idx] for x in xs]))[0]
    torch.testing.assert_close(got, expected)
    assert stats.shape == (2,)
    assert evaluation_order(20, _cfg(eval_batches="file_order"), 5, torch.device("cpu")) is None


def test_full_batch_evaluation_is_permutation_equivariant():
    cfg = _cfg(eval_batches="full")
    model = _model().eval()
    xs = _batch(b=20)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(0))
    h, _ = common_embedding(model, xs, cfg, None, "fp32")
    h_perm, _ = common_embedding(model, [x[perm] for x in xs], cfg, None, "fp32")
    torch.testing.assert_close(h_perm, h[perm], atol=1e-5, rtol=1e-5)


def test_file_row_order_does_not_change_the_labels_under_permuted_batches():
    # Stored sorted by class: file-order batches of 16 would each hold a single class.
    views, y = _blobs(n_per=32, seed=6, sorted_by_class=True)
    cfg = _cfg(pre_epochs=15, fine_tune_epochs=15, lr=3e-3)
    inp = _input(views, pre_epochs=15, fine_tune_epochs=15, lr=3e-3)
    model, _ = gcfaggmvc.train(inp, cfg)
    model.eval()
    n = len(y)
    file_perm = torch.randperm(n, generator=torch.Generator().manual_seed(1))

    def labels(xs):
        order = evaluation_order(n, cfg, seed=9, device=torch.device("cpu"))
        h, _ = common_embedding(model, xs, cfg, order, "fp32")
        return kmeans(h, K, n_init=5, seed=0)[0].numpy()

    as_stored = labels(views)
    shuffled_file = labels([x[file_perm] for x in views])
    # the same partition of the samples, whichever row order the file had
    assert adjusted_rand_score(as_stored[file_perm.numpy()], shuffled_file) == 1.0
    assert adjusted_rand_score(y, as_stored) == 1.0


# --- end to end -----------------------------------------------------------------------------

def test_end_to_end_extras_and_finite_outputs():
    views, y = _blobs()
    progress_stages = []

    class Recorder(QuietProgress):
        def stage(self, name, total):
            super().stage(name, total)
            progress_stages.append((name, total))

    inp = _input(views)
    inp.progress = Recorder()
    out = SPEC.fit_predict(inp)
    assert out.labels.shape == y.shape and out.labels.dtype == np.int64
    assert progress_stages == [("pretrain", 2), ("fine_tune", 2), ("kmeans", 1)]
    history = out.extras["loss_history"]
    assert {k: len(v) for k, v in history.items()} == {"pretrain": 2, "fine_tune": 2}
    assert all(math.isfinite(x) for v in history.values() for x in v)
    assert set(out.extras["loss_parts"]["fine_tune"]) == {"contrastive", "rec"}
    diag = out.extras["s_diagnostics"]
    assert len(diag["row_entropy"]) == 2 and len(diag["row_max"]) == 2
    assert diag["uniform_row_entropy"] == pytest.approx(math.log(32))
    assert 0 < diag["eval_row_entropy"] <= math.log(16) + 1e-6 and 0 < diag["eval_row_max"] <= 1
    assert set(out.extras["epoch_seconds"]) == {"pretrain", "fine_tune", "inference", "kmeans"}


def test_learns_separable_clusters():
    views, y = _blobs(seed=2)
    out = SPEC.fit_predict(_input(views, pre_epochs=15, fine_tune_epochs=15, lr=3e-3))
    assert adjusted_rand_score(y, out.labels) > 0.9


def test_same_seed_same_labels_and_the_callers_rng_is_left_alone():
    views, _ = _blobs(seed=3)
    before = torch.get_rng_state()
    a, b = SPEC.fit_predict(_input(views, seed=4)), SPEC.fit_predict(_input(views, seed=4))
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.extras["loss_history"] == b.extras["loss_history"]
    assert a.extras["s_diagnostics"] == b.extras["s_diagnostics"]
    c = SPEC.fit_predict(_input(views, seed=5))
    assert c.extras["loss_history"] != a.extras["loss_history"]


@pytest.mark.parametrize("variant", sorted(SPEC.variants))
def test_each_variant_runs_on_fewer_samples_than_a_batch(variant):
    views, _ = _blobs(n_per=6)  # N = 18 < batch 32: one whole-data batch per epoch
    options = dict(SPEC.variants[variant].options)
    out = SPEC.fit_predict(_input(views, **options))
    assert out.labels.shape == (18,)
    assert all(math.isfinite(x) for x in out.extras["loss_history"]["fine_tune"])


def test_bf16_runs_and_bad_precision_is_a_user_error():
    views, y = _blobs(n_per=10)
    assert SPEC.fit_predict(_input(views, precision="bf16")).labels.shape == y.shape
    with pytest.raises(MvbenchError):
        SPEC.fit_predict(_input(views, precision="fp8"))


def test_spec_defaults_presets_and_variants():
    assert gcfaggmvc.mvbench_methods() == [SPEC]
    assert not SPEC.handles_missing and "Complete views only" in SPEC.description
    defaults = Config.from_options({})
    assert (defaults.pre_epochs, defaults.fine_tune_epochs, defaults.batch_size, defaults.lr) == (200, 100, 256, 3e-4)
    assert (defaults.tau, defaults.lambda_c, defaults.sg_weight, defaults.detach_S) == (0.5, 1.0, "logit", False)
    assert (defaults.attn_input, defaults.gcfagg_block, defaults.aggregation) == ("ln", "transformer", "gcfagg")
    assert (defaults.eval_batches, defaults.kmeans_n_init, defaults.hidden) == ("permuted", 100, (500, 500, 2000))
    assert SPEC.presets["caltech4v"] == {"fine_tune_epochs": 150}
    assert SPEC.presets["caltech5v"] == {"fine_tune_epochs": 200}
    ablations = {o.name for o in SPEC.options if o.ablation}
    assert ablations == {"lambda_c", "sg_weight", "aggregation", "recon_in_finetune"}
    for name, variant in SPEC.variants.items():
        assert name.startswith("gcfaggmvc-") and set(variant.options) <= ablations
        resolve_options(SPEC.options, variant.options)
    registry = build_registry(objects=[("gcfaggmvc", gcfaggmvc)])
    assert registry.method_variant("gcfaggmvc-concat") == (SPEC, "gcfaggmvc-concat")


def test_tiny_cli_run(cli, tmp_path):
    tiny = [f"--set={name}={value}" for name, value in
            {"dataset.samples": 40, "dataset.dims": 5, "hidden": 12, "feature_dim": 8, "high_dim": 4,
             "ffn_dim": 8, "batch_size": 16, "pre_epochs": 1, "fine_tune_epochs": 1, "kmeans_n_init": 2}.items()]
    plugin = ["-p", "mvbench_plugins.methods.gcfaggmvc"]
    code, _, err = cli(*plugin, "run", "--method", "gcfaggmvc", "--dataset", "synthetic", "--seeds", "1",
                       *tiny, "--out", str(tmp_path), "-q")
    assert code == 0, err
    code, _, err = cli(*plugin, "run", "--method", "gcfaggmvc-noSG", "--dataset", "synthetic", "--seeds", "1",
                       *tiny, "--out", str(tmp_path), "-q")
    assert code == 0, err
    records = read_records(tmp_path / "trials.jsonl")
    assert [r["status"] for r in records] == ["ok", "ok"]
    assert records[0]["method_options"]["eval_batches"] == "permuted"
    assert records[1]["variant"] == "gcfaggmvc-noSG" and records[1]["method_options"]["sg_weight"] == "none"
    code, out, _ = cli(*plugin, "show", "gcfaggmvc")
    assert code == 0 and "Complete views only" in out.replace("\n", " ")
