"""Tests for centaur.data.blocks: labels to tensors and back, with clear errors for bad labels."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from centaur.core.errors import CentaurError
from centaur.data.blocks import CategoryBlock, ImageBlock, MultiCategoryBlock, RegressionBlock, as_block


def test_category_vocab_sorted_and_roundtrip():
    block = CategoryBlock()
    block.setup(["dog", "cat", "bird", "dog", "cat"])
    assert block.vocab == ["bird", "cat", "dog"] and block.num_outputs == 3
    for label in ("bird", "cat", "dog"):
        y = block.encode(label)
        assert y.dtype == torch.int64 and y.shape == ()
        assert block.decode(y) == label
    assert block.encode("dog").item() == 2
    assert isinstance(block.loss_func(), nn.CrossEntropyLoss)


def test_category_vocab_natural_order():
    block = CategoryBlock()
    block.setup(["10", "2", "1", "class10", "class9"])  # folder names of a digits data set
    assert block.vocab == ["1", "2", "10", "class9", "class10"]
    numbers = CategoryBlock()
    numbers.setup([3, 10, 2, 10])
    assert numbers.vocab == ["2", "3", "10"]
    assert numbers.decode(numbers.encode(10)) == "10"  # numbers are kept as their text


def test_category_unknown_label():
    block = CategoryBlock()
    block.setup(["cat", "dog"])
    with pytest.raises(CentaurError, match="label 'dgo' is not among the training labels.*Did you mean: 'dog'"):
        block.encode("dgo")


def test_category_given_vocab_needs_no_setup():
    block = CategoryBlock(vocab=["b", "a"])
    assert block.encode("a").item() == 1  # the given order is kept
    block.setup(["a"])  # setup does not replace a given vocabulary
    assert block.vocab == ["b", "a"]
    with pytest.raises(CentaurError, match="no vocabulary yet"):
        CategoryBlock().encode("a")


def test_multi_category_multi_hot():
    block = MultiCategoryBlock()
    block.setup(["cat dog", ["bird"], "dog", float("nan")])
    assert block.vocab == ["bird", "cat", "dog"]
    y = block.encode("dog cat")
    assert y.dtype == torch.float32 and y.tolist() == [0.0, 1.0, 1.0]
    assert block.encode(["bird"]).tolist() == [1.0, 0.0, 0.0]
    assert block.encode(float("nan")).tolist() == [0.0, 0.0, 0.0]  # no labels at all
    assert block.encode("").tolist() == [0.0, 0.0, 0.0]
    assert block.decode(torch.tensor([0.9, 0.2, 0.5])) == ["bird", "dog"]
    assert isinstance(block.loss_func(), nn.BCEWithLogitsLoss)
    with pytest.raises(CentaurError, match="'fish'"):
        block.encode("cat fish")
    comma = MultiCategoryBlock(label_delim=",")
    comma.setup(["a, b", "c"])
    assert comma.vocab == ["a", "b", "c"]


def test_regression_block():
    block = RegressionBlock()
    block.setup([1.0, 2.0])
    assert block.vocab is None and block.num_outputs == 1
    for value in (3, 3.5, "3.5", np.float32(3.5), torch.tensor(3.5)):
        y = block.encode(value)
        assert y.dtype == torch.float32 and y.shape == (1,)
    assert block.encode("3.5").item() == 3.5
    assert block.decode(block.encode(2.0)) == [2.0]
    assert RegressionBlock(n_out=2).encode([1, 2]).tolist() == [1.0, 2.0]
    assert isinstance(block.loss_func(), nn.MSELoss)


@pytest.mark.parametrize("value", ["abc", None, [1, 2], {"a": 1}])
def test_regression_non_number(value):
    with pytest.raises(CentaurError, match="is not a number"):
        RegressionBlock().encode(value)


def test_regression_nan_and_wrong_count():
    with pytest.raises(CentaurError, match="missing or infinite"):
        RegressionBlock().encode(float("nan"))
    with pytest.raises(CentaurError, match="is not 2 numbers"):
        RegressionBlock(n_out=2).encode(1.0)


def test_image_block_to_tensor(tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (5, 3), (1, 2, 3)).save(path)
    img = ImageBlock().load(path)
    t = ImageBlock.to_tensor(img)
    assert t.shape == (3, 3, 5) and t.dtype == torch.uint8  # (C, H, W)
    assert t[:, 0, 0].tolist() == [1, 2, 3]


def test_as_block():
    assert isinstance(as_block(CategoryBlock), CategoryBlock)
    given = CategoryBlock(vocab=["x"])
    assert as_block(given) is given and as_block(None) is None
