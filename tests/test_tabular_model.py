"""TabularModel and tabular_learner on tiny synthetic tables: sizes, shapes, dropout, config, training."""
import json

import pytest
import torch

from centaur.core.errors import CentaurError
from centaur.core.seed import set_seed
from centaur.data.blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from centaur.models.tabular import SigmoidRange, TabularModel, emb_sz_rule
from centaur.tabular.learner import default_metrics, tabular_learner


# --- a stand-in for TabularDataLoaders: whole-table tensors, batches by index ---

class TensorLoader:
    """Yields ((x_cat (B, n_cat), x_cont (B, n_cont)), y) batches from whole-table tensors."""

    def __init__(self, x_cat, x_cont, y, bs, shuffle, seed=0):
        self.x_cat, self.x_cont, self.y, self.bs, self.shuffle = x_cat, x_cont, y, bs, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        # training drops the last partial batch: BatchNorm cannot train on a batch of one
        n = len(self.y)
        return n // self.bs if self.shuffle else -(-n // self.bs)

    def __iter__(self):
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for i in range(len(self)):
            idx = order[i * self.bs:(i + 1) * self.bs]
            yield (self.x_cat[idx], self.x_cont[idx]), self.y[idx]


class Processor:
    def __init__(self, cardinalities, cat_names, cont_names):
        self.cardinalities_, self.cat_names_, self.cont_names_ = cardinalities, cat_names, cont_names


class TableDLs:
    def __init__(self, x_cat, x_cont, y, y_block, cardinalities, n_valid, bs=64, seed=0):
        n_train = len(y) - n_valid
        self.train = TensorLoader(x_cat[:n_train], x_cont[:n_train], y[:n_train], bs, shuffle=True, seed=seed)
        self.valid = TensorLoader(x_cat[n_train:], x_cont[n_train:], y[n_train:], 256, shuffle=False)
        self.y_block = y_block
        self.processor = Processor(cardinalities, [f"cat{i}" for i in range(x_cat.shape[1])],
                                   [f"cont{i}" for i in range(x_cont.shape[1])])


def synthetic_table(n=1500, n_levels=20, seed=0):
    """A category whose levels each shift the target (an embedding-like effect) and two numbers.

    Level 0 is the reserved '#na#' level and never occurs, as after Categorify.
    """
    g = torch.Generator().manual_seed(seed)
    effect = torch.randn(n_levels + 1, generator=g) * 2.0  # (n_levels + 1,)
    store = torch.randint(1, n_levels + 1, (n,), generator=g)  # (n,)
    day = torch.randint(1, 8, (n,), generator=g)  # (n,) a second column with no effect
    x_cat = torch.stack([store, day], dim=1)  # (n, 2)
    x_cont = torch.randn(n, 2, generator=g)  # (n, 2): only the first matters
    signal = effect[store] + 2.0 * x_cont[:, 0]  # (n,)
    return x_cat, x_cont, signal, [n_levels + 1, 8], g


def regression_dls(seed=0):
    x_cat, x_cont, signal, cards, g = synthetic_table(seed=seed)
    y = (signal + 0.1 * torch.randn(len(signal), generator=g)).unsqueeze(1)  # (n, 1)
    return TableDLs(x_cat, x_cont, y, RegressionBlock(), cards, n_valid=300, seed=seed)


def classification_dls(seed=0):
    x_cat, x_cont, signal, cards, _ = synthetic_table(seed=seed)
    y = torch.bucketize(signal, torch.tensor([-1.0, 1.0]))  # (n,) 3 classes by the signal's size
    block = CategoryBlock(vocab=["low", "mid", "high"])
    return TableDLs(x_cat, x_cont, y, block, cards, n_valid=300, seed=seed)


def multi_label_dls(seed=0):
    x_cat, x_cont, signal, cards, _ = synthetic_table(n=400, seed=seed)
    y = torch.stack([signal > 0, x_cont[:, 0] > 0, x_cat[:, 0] % 2 == 0], dim=1).float()  # (n, 3) multi-hot
    block = MultiCategoryBlock(vocab=["positive", "x_up", "even_store"])
    return TableDLs(x_cat, x_cont, y, block, cards, n_valid=100, seed=seed)


def batch(cards, n_cont, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_cat = torch.stack([torch.randint(0, c, (bs,), generator=g) for c in cards], 1) if cards \
        else torch.zeros(bs, 0, dtype=torch.long)  # (B, n_cat)
    return x_cat, torch.randn(bs, n_cont, generator=g)  # (B, n_cont)


# --- the model ---

@pytest.mark.parametrize("n_cat, expected", [(1, 2), (2, 2), (10, 6), (1000, 77), (10**8, 600)])
def test_emb_sz_rule_matches_fastai(n_cat, expected):
    assert emb_sz_rule(n_cat) == expected == min(600, round(1.6 * n_cat ** 0.56))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_emb_sz_rule_refuses_non_counts(bad):
    with pytest.raises(CentaurError, match="level"):
        emb_sz_rule(bad)


@pytest.mark.parametrize("cards, n_cont, n_out", [
    ([5, 12], 3, 1),      # regression
    ([7, 3, 9], 2, 4),    # single label, 4 classes
    ([5], 0, 3),          # categorical columns only
    ([], 3, 2),           # continuous columns only
    ([], 1, 1),
])
def test_output_shapes(cards, n_cont, n_out):
    set_seed(0)
    model = TabularModel(cards, n_cont, n_out, layers=[16, 8])
    x_cat, x_cont = batch(cards, n_cont)
    for train in (True, False):
        model.train(train)
        out = model(x_cat, x_cont)
        assert out.shape == (8, n_out) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_layout_follows_fastai():
    model = TabularModel([10, 1000], 3, 2, layers=[32, 16], ps=[0.1, 0.2], embed_p=0.05)
    assert [e.embedding_dim for e in model.embeds] == [6, 77]
    assert [e.num_embeddings for e in model.embeds] == [10, 1000]
    assert model.bn_cont.num_features == 3
    kinds = [type(m).__name__ for m in model.layers]
    # Linear -> act -> BN -> Dropout per hidden layer (fastai's LinBnDrop, lin_first=True), then a Linear
    assert kinds == ["Linear", "ReLU", "BatchNorm1d", "Dropout"] * 2 + ["Linear"]
    assert model.layers[0].in_features == 6 + 77 + 3 and model.layers[0].bias is None
    assert model.layers[-1].bias is not None and model.layers[-1].out_features == 2
    assert [model.layers[3].p, model.layers[7].p, model.emb_drop.p] == [0.1, 0.2, 0.05]


def test_emb_szs_override_and_bn_cont_off():
    model = TabularModel([10, 20, 30], 2, 1, layers=[8], emb_szs={1: 3}, bn_cont=False, act="gelu")
    assert [e.embedding_dim for e in model.embeds] == [emb_sz_rule(10), 3, emb_sz_rule(30)] == [6, 3, 11]
    assert model.bn_cont is None and isinstance(model.layers[1], torch.nn.GELU)
    model = TabularModel([10, 20, 30], 2, 1, layers=[8], emb_szs=[4, None, 5])
    assert [e.embedding_dim for e in model.embeds] == [4, emb_sz_rule(20), 5] == [4, 9, 5]


def test_y_range_keeps_outputs_inside():
    set_seed(0)
    model = TabularModel([5], 2, 3, layers=[8], y_range=(-1.0, 4.0)).eval()
    x_cat, x_cont = batch([5], 2, bs=64)
    with torch.no_grad():
        for scale in (1.0, 100.0):
            model.layers[-2].weight.mul_(scale)  # push the raw outputs far out: still inside the range
            out = model(x_cat, x_cont * scale)
            assert (out >= -1.0).all() and (out <= 4.0).all()
    assert torch.equal(SigmoidRange(-1, 4)(torch.zeros(1)), torch.tensor([1.5]))


@pytest.mark.parametrize("ps, embed_p", [(0.5, 0.0), (0.0, 0.5), ([0.3, 0.6], 0.2)])
def test_dropout_only_in_training(ps, embed_p):
    set_seed(0)
    model = TabularModel([50, 9], 3, 2, layers=[64, 32], ps=ps, embed_p=embed_p)
    with torch.no_grad():
        for e in model.embeds:  # embeddings as after training, so dropping one changes the output
            e.weight.normal_()
    x_cat, x_cont = batch([50, 9], 3, bs=32)
    model.train()
    assert not torch.equal(model(x_cat, x_cont), model(x_cat, x_cont))
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x_cat, x_cont), model(x_cat, x_cont))


def test_without_dropout_training_is_deterministic():
    # the check above fails for the right reason: training mode alone (batch statistics) is repeatable
    set_seed(0)
    model = TabularModel([50, 9], 3, 2, layers=[64, 32]).train()
    x_cat, x_cont = batch([50, 9], 3, bs=32)
    assert torch.equal(model(x_cat, x_cont), model(x_cat, x_cont))


@pytest.mark.parametrize("kwargs", [
    dict(cardinalities=[5, 12], n_cont=3, n_out=1),
    dict(cardinalities=[7, 300], n_cont=2, n_out=4, layers=[32, 16, 8], ps=[0.1, 0.2, 0.3], embed_p=0.1,
         emb_szs={0: 3}, act="silu", bn_cont=False),
    dict(cardinalities=[], n_cont=4, n_out=2, layers=[16], y_range=(0, 10)),
    dict(cardinalities=[6], n_cont=0, n_out=1, layers=[], y_range=[-2.5, 2.5]),
])
def test_config_round_trip(kwargs):
    set_seed(0)
    model = TabularModel(**kwargs)
    x_cat, x_cont = batch(model.cardinalities, model.n_cont, bs=16)
    model.train()
    model(x_cat, x_cont)  # move BatchNorm's running statistics away from their start
    model.eval()
    config = json.loads(json.dumps(model.config()))  # as it would come back from model.json
    rebuilt = TabularModel.from_config(config)
    assert rebuilt.config() == model.config()
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    with torch.no_grad():
        assert torch.equal(rebuilt(x_cat, x_cont), model(x_cat, x_cont))


def test_state_dict_keys_do_not_depend_on_dropout():
    # Identity in place of Dropout(0): weights saved with one ps load into a model built with another
    a = TabularModel([5], 2, 1, layers=[8, 4], ps=0.0).state_dict()
    b = TabularModel([5], 2, 1, layers=[8, 4], ps=0.3).state_dict()
    assert list(a) == list(b)


GOOD = {"cardinalities": [5, 12], "n_cont": 3, "n_out": 1}


@pytest.mark.parametrize("change, message", [
    ({"n_out": None}, "lacks 'n_out'"),
    ({"layer": [10]}, "Did you mean: 'layers'"),
    ({"n_out": 0}, "n_out"),
    ({"n_out": True}, "n_out"),
    ({"n_cont": -1}, "n_cont"),
    ({"n_cont": 2.0}, "n_cont"),
    ({"cardinalities": [5, 0]}, r"cardinalities\[1\]"),
    ({"cardinalities": "abc"}, "cardinalities"),
    ({"cardinalities": [], "n_cont": 0}, "at least one"),
    ({"layers": [10, -2]}, r"layers\[1\]"),
    ({"layers": 100}, "layers"),
    ({"ps": [0.1]}, "1 dropout probabilities for 2 hidden layers"),
    ({"ps": 1.0}, "ps"),
    ({"ps": [0.1, float("nan")]}, r"ps\[1\]"),
    ({"embed_p": -0.1}, "embed_p"),
    ({"y_range": [5, 1]}, "low < high"),
    ({"y_range": [0]}, "y_range"),
    ({"y_range": "ab"}, "y_range"),
    ({"bn_cont": "yes"}, "bn_cont"),
    ({"act": "rleu"}, "Did you mean: 'relu'"),
    ({"emb_szs": [3]}, "1 widths for 2 categorical columns"),
    ({"emb_szs": {2: 4}}, "emb_szs key 2"),
    ({"emb_szs": [3, 0]}, "column 1"),
    ({"emb_szs": "wide"}, "emb_szs"),
])
def test_bad_configs_refused(change, message):
    config = {**GOOD, **change}
    config = {k: v for k, v in config.items() if v is not None}
    with pytest.raises(CentaurError, match=message):
        TabularModel.from_config(config)


def test_non_dict_config_refused():
    with pytest.raises(CentaurError, match="dict"):
        TabularModel.from_config([5, 12])


def test_wrong_number_of_columns_refused():
    model = TabularModel([5, 12], 3, 1, layers=[8])
    x_cat, x_cont = batch([5, 12], 3)
    with pytest.raises(CentaurError, match="2 categorical and 3 continuous columns, got 1 and 3"):
        model(x_cat[:, :1], x_cont)


# --- tabular_learner ---

def test_learner_regression_learns():
    set_seed(0)
    dls = regression_dls()
    learn = tabular_learner(dls, layers=[64, 32], progress=False)
    assert [m.__name__ for m in learn.metrics] == ["rmse", "mae"]
    assert len(learn.param_groups) == 1 and len(learn.param_groups[0]) == len(list(learn.model.parameters()))
    learn.fit_one_cycle(8, 1e-2)
    y_valid = dls.valid.y
    result = learn.validate()
    assert result["rmse"] < 0.25 * y_valid.std().item(), result
    assert learn.preprocessing["kind"] == "tabular"
    rebuilt = TabularModel.from_config(json.loads(json.dumps(learn.preprocessing["model"])))
    rebuilt.load_state_dict(learn.model.state_dict())
    preds, _ = learn.get_preds()
    rebuilt.eval()
    with torch.no_grad():
        assert torch.allclose(rebuilt(dls.valid.x_cat, dls.valid.x_cont), preds)


def test_regression_starts_at_the_target_scale():
    # the first predictions have the training targets' mean and spread, so an untrained model is
    # already at the level of a price far from 0; building it draws nothing from the loader's
    # generator and leaves the batch norm statistics as they were
    import copy
    set_seed(0)
    dls = regression_dls()
    dls.train.y = dls.train.y * 30.0 + 1000.0  # a target far from 0 with a wide spread, like a price
    before = dls.train.generator.get_state() if dls.train.generator is not None else None
    learn = tabular_learner(dls, layers=[16], progress=False)
    if before is not None:
        assert torch.equal(dls.train.generator.get_state(), before)
    assert learn.model.y_scale is None and learn.preprocessing["model"]["y_scale"] is None
    bn = learn.model.layers[2]
    assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    probe = copy.deepcopy(learn.model).train()  # batch norm as in a training step
    with torch.no_grad():
        preds = probe(dls.train.x_cat, dls.train.x_cont).double().view(-1)
    y = dls.train.y.double().view(-1)
    assert abs(preds.mean().item() - y.mean().item()) < 0.05 * y.std().item()
    assert preds.std().item() == pytest.approx(y.std().item(), rel=0.1)


def test_learner_classification_learns():
    set_seed(0)
    dls = classification_dls()
    learn = tabular_learner(dls, layers=[64, 32], ps=0.1, embed_p=0.05, progress=False)
    assert [m.__name__ for m in learn.metrics] == ["accuracy"]
    learn.fit_one_cycle(8, 1e-2)
    assert learn.validate()["accuracy"] > 0.9


def test_learner_multi_label_runs():
    set_seed(0)
    dls = multi_label_dls()
    learn = tabular_learner(dls, layers=[16], progress=False)
    assert [m.__name__ for m in learn.metrics] == ["accuracy_multi"]
    learn.fit_one_cycle(1, 1e-2)
    preds, targets = learn.get_preds()
    assert preds.shape == targets.shape == (100, 3)
    assert learn.preprocessing["model"]["n_out"] == 3


def test_learner_options_reach_the_model():
    dls = regression_dls()
    learn = tabular_learner(dls, layers=[8], ps=0.2, y_range=(-10, 10), emb_szs={"cat1": 5},
                            metrics=["mae"], progress=False)
    config = learn.preprocessing["model"]
    assert config["emb_szs"] == [emb_sz_rule(21), 5] and config["cardinalities"] == [21, 8]
    assert config["y_range"] == [-10.0, 10.0] and config["ps"] == [0.2] and config["n_cont"] == 2
    assert [m.__name__ for m in learn.metrics] == ["mae"]


def test_learner_refuses_mistakes():
    dls = regression_dls()
    with pytest.raises(CentaurError, match="Did you mean: 'cat1'"):
        tabular_learner(dls, emb_szs={"cat_1": 5}, progress=False)
    with pytest.raises(CentaurError, match="only applies to a regression target"):
        tabular_learner(classification_dls(), y_range=(0, 1), progress=False)
    dls.processor = None
    with pytest.raises(CentaurError, match="TabularDataLoaders"):
        tabular_learner(dls, progress=False)
    with pytest.raises(CentaurError, match="unknown task"):
        default_metrics("regresion")


def test_one_gather_matches_one_embedding_per_column():
    # the flat lookup (one gather over the tables laid end to end) must equal n_cat nn.Embedding
    # calls, forward and backward, whatever the widths
    torch.manual_seed(0)
    model = TabularModel([1001, 3, 29, 1], n_cont=2, n_out=1, layers=[8], emb_szs=[7, None, 4, 2])
    for e in model.embeds:
        torch.nn.init.normal_(e.weight)
    x_cat = torch.stack([torch.randint(0, n, (64,)) for n in model.cardinalities], 1)  # (64, 4)
    out = model.embed(x_cat)
    ref = torch.cat([e(x_cat[:, i]) for i, e in enumerate(model.embeds)], dim=1)
    assert torch.equal(out, ref)
    grad = torch.randn_like(out)
    out.backward(grad)
    flat_grads = [e.weight.grad.clone() for e in model.embeds]
    model.zero_grad()
    ref = torch.cat([e(x_cat[:, i]) for i, e in enumerate(model.embeds)], dim=1)
    ref.backward(grad)
    for g, e in zip(flat_grads, model.embeds):
        assert torch.allclose(g, e.weight.grad, atol=1e-6)
    with torch.no_grad():  # prediction takes the per-column path: the same numbers
        assert torch.equal(model.embed(x_cat), ref.detach())
    assert model.embed(torch.zeros(3, 4, dtype=torch.long)).shape == (3, sum(model.emb_szs))
    # the lookup adds nothing to the saved weights
    assert [k for k in model.state_dict() if k.startswith("_")] == []


@pytest.mark.parametrize("column,code", [(0, 1001), (1, -1), (2, 29)])
def test_codes_outside_a_table_refused(column, code):
    # without the check, a too-large code would silently read the next column's table
    model = TabularModel([1001, 3, 29], n_cont=0, n_out=1, layers=[4])
    x_cat = torch.zeros(4, 3, dtype=torch.long)
    x_cat[2, column] = code
    with pytest.raises(CentaurError, match=f"categorical column {column} has codes outside"):
        model(x_cat, torch.zeros(4, 0))
