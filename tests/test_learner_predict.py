"""Learner.predict, as fastai users call it in a notebook: one item, prepared as validation data,
answered as the exported model's Predictor answers."""
import numpy as np
import pytest
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.data.block import DataBlock
from centaur.data.blocks import CategoryBlock, ImageBlock
from centaur.data.getters import get_image_files, parent_label
from centaur.data.transforms import Resize
from centaur.inference import Predictor, TabularPredictor
from centaur.vision.learner import vision_learner

from conftest import copy_emoji


def test_an_image_learner_predicts_one_image_given_any_way(tmp_path):
    data = copy_emoji(tmp_path / "data", per_class=6)
    dls = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                    item_tfms=Resize(32)).dataloaders(data, bs=8, seed=0)
    learn = vision_learner(dls, "lite0", progress=False)
    assert "not trained yet" in repr(learn)
    learn.fit_one_cycle(1, 1e-3)
    assert "1 epoch(s)" in repr(learn) and "accuracy" in repr(learn)
    path = get_image_files(data / "face")[0]
    got = learn.predict(path, top_k=2)
    assert got["label"] in dls.vocab and len(got["top_k"]) == 2
    with Image.open(path) as img:
        assert learn.predict(img, top_k=2) == got
    assert learn.predict(path.read_bytes(), top_k=2) == got
    learn.unfreeze()  # float32 throughout, as the exported model runs
    got = learn.predict(path)
    saved = Predictor(learn.export(tmp_path / "m")).predict(path)
    assert saved["label"] == got["label"] and saved["probability"] == pytest.approx(got["probability"], abs=1e-4)
    with pytest.raises(CentaurError, match="one image; for many use get_preds"):
        learn.predict([path, path])
    with pytest.raises(ValueError, match="top_k"):
        learn.predict(path, top_k=0)


def test_a_table_learner_predicts_one_row(tmp_path):
    import pandas as pd
    from centaur.data.tabular import TabularDataLoaders, split_table
    from centaur.tabular.learner import tabular_learner
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"shop": rng.choice(["a", "b", "c"], 300), "size": rng.normal(50, 10, 300)})
    df["sales"] = df["size"] * 2 + df["shop"].map({"a": 0, "b": 30, "c": 60})
    train, valid = split_table(df, 0.2, seed=0)
    dls = TabularDataLoaders.from_df(df, "sales", ["shop"], ["size"], "regression", train, valid, bs=32, seed=0)
    learn = tabular_learner(dls, layers=(16,), progress=False)
    learn.fit_one_cycle(2, 1e-2)
    row = df.drop(columns=["sales"]).iloc[5]
    got = learn.predict(row)
    assert set(got) == {"value"} and learn.predict(row.to_dict()) == got == learn.predict(row.to_frame().T)
    expected = TabularPredictor(learn.export(tmp_path / "m")).predict_table(row.to_frame().T)["prediction"].iloc[0]
    assert got["value"] == pytest.approx(expected, rel=1e-4)
    with pytest.raises(CentaurError, match="one row.*get_preds"):
        learn.predict(df.head(3))


def test_new_loaders_given_to_a_learner_are_normalized_as_its_weights_expect(tmp_path):
    # progressive resizing: learn.dls = loaders at a larger size; they trained on raw pixels before,
    # unsaid until export refused the model
    data = copy_emoji(tmp_path / "data", per_class=4)
    block = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                      item_tfms=Resize(32))
    learn = vision_learner(block.dataloaders(data, bs=8, seed=0), "lite0", progress=False)
    bigger = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                       item_tfms=Resize(48)).dataloaders(data, bs=8, seed=0)
    assert bigger.train.mean is None
    learn.dls = bigger
    assert learn.dls is bigger and tuple(bigger.train.mean) == tuple(learn.preprocessing["mean"])
    learn.fit(1, 1e-3)
    assert (learn.export(tmp_path / "m") / "model.json").is_file()
