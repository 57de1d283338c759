from __future__ import annotations

import pytest
import torch

from digit_recognizer.ml.models import ConvNet, build_model, count_parameters


@pytest.mark.parametrize(
    ("architecture", "options", "out", "parameters"),
    [
        ("linear", {}, 10, 784 * 10 + 10),
        ("linear", {"head": "regression"}, 1, 784 + 1),
        ("mlp", {}, 10, 784 * 30 + 30 + 30 * 10 + 10),
        ("mlp", {"head": "regression"}, 1, 784 * 30 + 30 + 30 + 1),
        ("centroid", {}, 10, 10 * 784),
    ],
)
def test_output_shapes_and_parameter_counts(architecture, options, out, parameters):
    model = build_model(architecture, **options)
    assert model(torch.rand(5, 1, 28, 28)).shape == (5, out)
    assert count_parameters(model) == parameters


def test_conv_matches_the_notebook_layout():
    convs = [(1, 4), (4, 16), (16, 32), (32, 64), (64, 10)]
    weights = sum(9 * i * o + o for i, o in convs)
    plain = build_model("conv", batchnorm=False)
    assert count_parameters(plain) == weights
    assert [m.out_channels for m in plain if isinstance(m, torch.nn.Conv2d)] == [o for _, o in convs]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain)
    with_bn = build_model("conv")
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn) == 4  # all but the last conv
    assert count_parameters(with_bn) == weights + 2 * (4 + 16 + 32 + 64)
    assert with_bn(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert ConvNet.CHANNELS == (1, 4, 16, 32, 64, 10)


def test_cnn_is_a_small_vgg_style_net():
    widths = [16, 32, 64]
    convs = [(1, 16), (16, 16), (16, 32), (32, 32), (32, 64), (64, 64)]
    expected = sum(9 * i * o for i, o in convs) + sum(2 * o for _, o in convs) + 64 * 10 + 10  # no conv bias
    model = build_model("cnn", widths=widths, dropout=0.2)
    assert count_parameters(model) == expected == 72_666
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in model) == 2  # 28 -> 14 -> 7
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    wide = build_model("cnn", widths=[8, 16, 32, 64])
    assert wide(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    torch.manual_seed(5)
    first = build_model("cnn").state_dict()
    torch.manual_seed(5)
    assert all(torch.equal(a, b) for a, b in zip(first.values(), build_model("cnn").state_dict().values(), strict=True))


def test_nearest_centroid_predicts_the_closest_mean():
    images = torch.zeros(20, 1, 28, 28)
    labels = torch.arange(10).repeat(2)
    for i, label in enumerate(labels):
        images[i, 0, label, :] = 1.0  # digit d lights row d
    for distance in ("euclidean", "cosine"):
        model = build_model("centroid", distance=distance).fit(images, labels)
        assert torch.equal(model(images).argmax(1), labels)


def test_centroid_needs_every_digit():
    with pytest.raises(ValueError, match=r"no training images: \[9\]"):
        build_model("centroid").fit(torch.rand(9, 1, 28, 28), torch.arange(9))


def test_unknown_architecture_and_options():
    with pytest.raises(ValueError, match="unknown architecture 'resnet'"):
        build_model("resnet")
    with pytest.raises(ValueError, match="bad options"):
        build_model("conv", hidden=3)
    with pytest.raises(ValueError, match="head: Input should be 'classification' or 'regression'"):
        build_model("linear", head="softmax")


def test_a_fresh_model_is_built_every_time():
    torch.manual_seed(0)
    first = build_model("mlp")
    torch.manual_seed(0)
    second = build_model("mlp")
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))
    with torch.no_grad():
        for weight in first.parameters():
            weight.add_(1.0)  # as a training step would: the second model must not move with it
    assert not any(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True))


def test_fast_is_the_cnns_design_with_one_conv_in_its_middle_stage():
    convs = [(1, 16), (16, 16), (16, 32), (32, 64), (64, 64)]  # two, one and two 3x3 convs per stage
    model = build_model("fast")
    assert count_parameters(model) == sum(9 * i * o + 2 * o for i, o in convs) + 64 * 10 + 10 == 63_386
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model) == 5
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    assert count_parameters(build_model("fast", convs=[2, 2, 2])) == count_parameters(build_model("cnn"))
    with pytest.raises(ValueError, match=r"convs needs one count per stage of widths \(3\), got 2"):
        build_model("fast", convs=[1, 2])


def test_pooling_before_relu_is_the_same_net_with_the_same_parameter_names():
    torch.manual_seed(0)
    model = build_model("cnn").eval()
    layers = list(model)
    kinds = [type(m).__name__ for m in layers[:11]]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"] + [
        "Conv2d",
        "BatchNorm2d",
        "ReLU",
        "Conv2d",
    ]
    # The textbook order (ReLU, then max-pool) with the very same modules computes the same logits.
    textbook = list(layers)
    for i in range(len(textbook) - 1):
        if isinstance(textbook[i], torch.nn.MaxPool2d) and isinstance(textbook[i + 1], torch.nn.ReLU):
            textbook[i], textbook[i + 1] = textbook[i + 1], textbook[i]
    reference = torch.nn.Sequential(*textbook).eval()
    images = torch.rand(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(model(images), reference(images))
    # Parameters keep the names they had with the textbook order, so earlier model files load.
    assert list(model.state_dict()) == list(reference.state_dict())
    assert "7.weight" in model.state_dict() and isinstance(layers[7], torch.nn.Conv2d)
