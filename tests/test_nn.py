import math

import numpy as np
import pytest
import torch

from mvbench.errors import MvbenchError
from mvbench.nn import (
    MultiViewAutoencoder,
    ViewAutoencoder,
    adam,
    autocast,
    balance_term,
    cluster_contrastive_loss,
    entropy_of_mean,
    hungarian_match,
    instance_contrastive_loss,
    kmeans,
    minibatches,
    minmax_scale,
    torch_generator,
)


def naive_nt_xent(vectors_a, vectors_b, similarity, temperature, anchors_from_a_only=False):
    """Loop version: anchor i of the 2M stacked vectors, positive = its partner, all other
    vectors except itself in the denominator."""
    stacked = list(vectors_a) + list(vectors_b)
    m = len(vectors_a)
    losses = []
    for i in range(m if anchors_from_a_only else 2 * m):
        partner = (i + m) % (2 * m)
        numer = math.exp(similarity(stacked[i], stacked[partner]) / temperature)
        denom = sum(
            math.exp(similarity(stacked[i], stacked[k]) / temperature)
            for k in range(2 * m)
            if k != i
        )
        losses.append(-math.log(numer / denom))
    return sum(losses) / len(losses)


def dot(u, v):
    return float((u * v).sum())


def cosine(u, v):
    return dot(u, v) / float(u.norm() * v.norm())


def test_instance_loss_matches_loop_and_hand_value():
    g = torch.Generator().manual_seed(0)
    h_a, h_b = torch.randn(3, 2, generator=g), torch.randn(3, 2, generator=g)
    expected = naive_nt_xent(h_a, h_b, dot, 0.5)
    assert instance_contrastive_loss(h_a, h_b, 0.5).item() == pytest.approx(expected, rel=1e-5)
    # orthonormal rows, tau 1: each anchor sees e^1 (positive) and two e^0 negatives
    eye = torch.eye(2)
    assert instance_contrastive_loss(eye, eye, 1.0).item() == pytest.approx(math.log(1 + 2 / math.e))
    # one sample: the positive is the only term of the denominator
    one = torch.tensor([[0.6, 0.8]])
    assert instance_contrastive_loss(one, one, 0.5).item() == pytest.approx(0.0, abs=1e-7)


def test_cluster_loss_matches_loop_and_directional_mean():
    g = torch.Generator().manual_seed(1)
    q_a = torch.softmax(torch.randn(3, 2, generator=g), dim=1)
    q_b = torch.softmax(torch.randn(3, 2, generator=g), dim=1)
    cols_a, cols_b = q_a.T, q_b.T
    sym = cluster_contrastive_loss(q_a, q_b, 1.0)
    assert sym.item() == pytest.approx(naive_nt_xent(cols_a, cols_b, cosine, 1.0), rel=1e-5)
    ab = cluster_contrastive_loss(q_a, q_b, 1.0, directional=True)
    ba = cluster_contrastive_loss(q_b, q_a, 1.0, directional=True)
    expected_ab = naive_nt_xent(cols_a, cols_b, cosine, 1.0, anchors_from_a_only=True)
    assert ab.item() == pytest.approx(expected_ab, rel=1e-5)
    assert sym.item() == pytest.approx((ab.item() + ba.item()) / 2, rel=1e-6)
    eye = torch.eye(2)
    assert cluster_contrastive_loss(eye, eye, 1.0).item() == pytest.approx(math.log(1 + 2 / math.e))


def test_losses_have_gradients_and_run_in_float32_under_bf16():
    h = torch.randn(4, 3, requires_grad=True)
    with autocast(torch.device("cpu"), "bf16"):
        loss = instance_contrastive_loss(h.bfloat16(), h.flip(0), 0.5)
    assert loss.dtype == torch.float32
    loss.backward()
    assert h.grad is not None and torch.isfinite(h.grad).all()


def test_balance_term():
    assert balance_term(torch.full((5, 4), 0.25)).item() == pytest.approx(0.0, abs=1e-6)
    # rows differ but their mean is uniform: still balanced
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert balance_term(q).item() == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.tensor([[1.0, 0.0, 0.0]] * 3)
    assert balance_term(collapsed).item() == pytest.approx(math.log(3), rel=1e-6)
    assert entropy_of_mean(collapsed).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.tensor([[0.7, 0.3], [0.5, 0.5]])
    mean = np.array([0.6, 0.4])
    assert entropy_of_mean(p).item() == pytest.approx(-(mean * np.log(mean)).sum(), rel=1e-6)


def test_hungarian_match_relabels_and_keeps_type():
    target = np.array([0, 0, 1, 1, 2, 2])
    source = np.array([2, 2, 0, 0, 1, 0])
    out = hungarian_match(source, target, 3)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, [0, 0, 1, 1, 2, 1])
    out_t = hungarian_match(torch.from_numpy(source), torch.from_numpy(target), 3)
    assert isinstance(out_t, torch.Tensor) and out_t.tolist() == [0, 0, 1, 1, 2, 1]
    # the mapping is one-to-one even when a source cluster is absent
    out_missing = hungarian_match(np.array([1, 1, 1]), np.array([0, 0, 0]), 3)
    np.testing.assert_array_equal(out_missing, [0, 0, 0])


def blobs(n_per: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    centers = torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, 10.0]])
    y = torch.arange(4).repeat_interleave(n_per)
    return centers[y] + torch.randn(len(y), 3, generator=g), y


def test_kmeans_recovers_blobs_and_is_deterministic():
    x, y = blobs(50, seed=0)
    labels, centers = kmeans(x, 4, n_init=5, seed=3)
    assert labels.dtype == torch.int64 and centers.shape == (4, 3)
    matched = hungarian_match(labels, y, 4)
    assert torch.equal(matched, y)
    again, centers_again = kmeans(x, 4, n_init=5, seed=3)
    assert torch.equal(labels, again) and torch.equal(centers, centers_again)
    # labels are the nearest centers
    assert torch.equal(torch.cdist(x, centers).argmin(dim=1), labels)


def test_kmeans_many_inits_beat_or_match_one_and_handle_duplicates():
    x, _ = blobs(30, seed=1)
    inertia = lambda lab, c: float(((x - c[lab]) ** 2).sum())  # noqa: E731
    one = inertia(*kmeans(x, 6, n_init=1, seed=0))
    many = inertia(*kmeans(x, 6, n_init=20, seed=0))
    assert many <= one + 1e-4
    # more clusters than distinct points forces empty clusters; all k labels stay valid
    dup = torch.tensor([[0.0], [0.0], [1.0], [1.0], [5.0]])
    labels, centers = kmeans(dup, 3, n_init=2, seed=0)
    assert sorted(set(labels.tolist())) == [0, 1, 2] and torch.isfinite(centers).all()
    with pytest.raises(MvbenchError):
        kmeans(dup, 6, seed=0)


def test_minibatches_cover_a_permutation_and_small_n():
    g = torch_generator(0)
    batches = list(minibatches(10, 3, g, device="cpu"))
    assert [len(b) for b in batches] == [3, 3, 3]
    seen = torch.cat(batches)
    assert len(set(seen.tolist())) == 9
    full = torch.cat(list(minibatches(10, 3, torch_generator(0), device="cpu", drop_last=False)))
    assert sorted(full.tolist()) == list(range(10))
    assert torch.equal(full[:9], seen)  # same seed, same permutation
    second_epoch = torch.cat(list(minibatches(10, 3, g, device="cpu")))
    assert not torch.equal(second_epoch, seen)  # the generator advances between epochs
    (small,) = list(minibatches(5, 256, torch_generator(1), device="cpu"))
    assert sorted(small.tolist()) == list(range(5))


def test_autoencoders_shapes_and_activations():
    ae = ViewAutoencoder(6, [8, 4], 3)
    x = torch.randn(5, 6)
    z, x_hat = ae(x)
    assert z.shape == (5, 3) and x_hat.shape == (5, 6)
    assert isinstance(ae.encoder[-1], torch.nn.Linear) and isinstance(ae.decoder[-1], torch.nn.Linear)
    relu_ae = ViewAutoencoder(6, [8], 3, latent_activation="relu", output_activation="relu")
    z, x_hat = relu_ae(x)
    assert (z >= 0).all() and (x_hat >= 0).all()
    mv = MultiViewAutoencoder([6, 2], [8], 3)
    zs = mv.encode([x, torch.randn(5, 2)])
    assert [t.shape for t in zs] == [(5, 3), (5, 3)] and len(mv.views) == 2
    with pytest.raises(MvbenchError):
        ViewAutoencoder(6, [8], 3, activation="swish")


def test_autocast_and_minmax():
    with autocast(torch.device("cpu"), "bf16"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    with pytest.raises(MvbenchError):
        autocast(torch.device("cpu"), "fp8")
    scaled = minmax_scale(torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]]))
    assert scaled.tolist() == [[0.0, 0.0], [1.0, 0.0], [0.5, 0.0]]


def test_adam_is_fused_on_cpu_and_matches_the_reference_update():
    torch.manual_seed(0)
    fast, slow = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    slow.load_state_dict(fast.state_dict())
    opt_fast = adam(fast.parameters(), lr=0.1, weight_decay=0.01)
    opt_slow = torch.optim.Adam(slow.parameters(), lr=0.1, weight_decay=0.01)
    assert opt_fast.defaults["fused"]
    x = torch.randn(8, 4)
    for _ in range(3):
        for model, opt in ((fast, opt_fast), (slow, opt_slow)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    assert torch.allclose(fast.weight, slow.weight, atol=1e-6)
