import dataclasses

import pytest

from mvbench.errors import MvbenchError
from mvbench.options import Option, ablated, resolve_options, split_assignment

OPTIONS = (
    Option("lr", "float", 3e-4, "learning rate", minimum=0.0),
    Option("epochs", "int", 10, "epochs", minimum=0),
    Option("balance", "bool", True, "balance term"),
    Option("widths", "list[int]", (500, 500), "hidden widths"),
    Option("rates", "list[float]", (0.1,), "rates"),
    Option("weighting", "str", "wasserstein", "view weighting", choices=("wasserstein", "uniform")),
)


@pytest.mark.parametrize("given, name, expected", [
    ({"lr": "0.01"}, "lr", 0.01),
    ({"lr": "1e-3"}, "lr", 1e-3),
    ({"epochs": "5"}, "epochs", 5),
    ({"epochs": "1e2"}, "epochs", 100),
    ({"balance": "false"}, "balance", False),
    ({"balance": "On"}, "balance", True),
    ({"widths": "64,32"}, "widths", (64, 32)),
    ({"widths": "[8]"}, "widths", (8,)),
    ({"rates": "0.1, 0.2,0.3"}, "rates", (0.1, 0.2, 0.3)),
    ({"weighting": "uniform"}, "weighting", "uniform"),
    ({"epochs": 7}, "epochs", 7),
    ({"lr": 1}, "lr", 1.0),
])
def test_typed_parsing(given, name, expected):
    values = resolve_options(OPTIONS, given)
    assert values[name] == expected
    assert type(values[name]) is type(expected)


def test_defaults_fill_everything():
    values = resolve_options(OPTIONS, {})
    assert values == {"lr": 3e-4, "epochs": 10, "balance": True, "widths": (500, 500),
                      "rates": (0.1,), "weighting": "wasserstein"}


def test_unknown_option_lists_valid_ones_with_did_you_mean():
    with pytest.raises(MvbenchError) as info:
        resolve_options(OPTIONS, {"epoch": "3"}, owner="method 'x'")
    message = str(info.value)
    assert "unknown option of method 'x' 'epoch'" in message
    assert "did you mean 'epochs'" in message
    assert "balance, epochs, lr, rates, weighting, widths" in message


@pytest.mark.parametrize("given, fragment", [
    ({"epochs": "2.5"}, "'epochs': '2.5' is not a valid int; e.g. epochs=3"),
    ({"balance": "maybe"}, "'balance': 'maybe' is not a valid bool"),
    ({"lr": "fast"}, "'lr': 'fast' is not a valid float"),
    ({"widths": "a,b"}, "'widths': 'a' is not a valid list[int]"),
    ({"weighting": "magic"}, "'weighting': 'magic' is not allowed; choose one of wasserstein, uniform"),
    ({"lr": "-1"}, "'lr': -1.0 is below the minimum 0.0"),
    ({"epochs": True}, "'epochs': True is not a valid int"),
])
def test_bad_values_name_option_value_and_type(given, fragment):
    with pytest.raises(MvbenchError) as info:
        resolve_options(OPTIONS, given)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_split_assignment():
    assert split_assignment("lr=0.1") == ("lr", "0.1")
    assert split_assignment("widths=1,2=3") == ("widths", "1,2=3")
    with pytest.raises(MvbenchError, match="expected name=value"):
        split_assignment("lr")


def test_bad_declaration_is_rejected():
    with pytest.raises(ValueError, match="type 'complex'"):
        Option("x", "complex", 1, "bad type")
    with pytest.raises(MvbenchError):
        Option("x", "int", "three", "bad default")


def test_ablated_names_the_toggles_moved_off_their_faithful_values():
    declared = (
        Option("lambda_2", "float", 1.0, "weight of L_S", ablation=True),
        Option("hidden", "list[int]", (8, 8), "widths", ablation=True),
        Option("z_normalize", "bool", False, "a variant, not an ablation"),
    )
    assert ablated(declared, {"lambda_2": 1.0, "hidden": [8, 8], "z_normalize": True}) == ()
    assert ablated(declared, {"lambda_2": 0.0, "hidden": [8, 8]}) == ("lambda_2",)
    assert ablated(declared, {"lambda_2": 1, "hidden": [4]}) == ("hidden",)
    # A dataset preset is the faithful value there; an old record's unacceptable value is not.
    assert ablated(declared, {"lambda_2": 0.5}, {"lambda_2": 0.5}) == ()
    assert ablated(declared, {"lambda_2": "off"}) == ("lambda_2",)


def test_options_class_gives_typed_attributes_and_one_line_errors():
    from mvbench.options import options_class

    declared = (Option("lr", "float", 1e-3, "a rate", minimum=0.0), Option("hidden", "list[int]", (4, 8), "widths"),
                Option("mode", "str", "a", "a choice", choices=("a", "b")))
    Config = options_class("Config", declared, owner="method 'demo'")
    cfg = Config.from_options({"lr": "0.5", "hidden": "16,32"})
    assert (cfg.lr, cfg.hidden, cfg.mode) == (0.5, (16, 32), "a")
    assert Config.from_options() == Config(lr=1e-3, hidden=(4, 8), mode="a")
    with pytest.raises(MvbenchError, match="did you mean 'mode'"):
        Config.from_options({"mdoe": "b"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0


def test_the_shared_option_declarations_agree_with_a_plain_option():
    from mvbench.options import Option, adam_options, autoencoder_options, choice, epochs

    assert epochs("pre_epochs", 200, "pre-training") == Option("pre_epochs", "int", 200, "pre-training", minimum=0)
    lr, decay = adam_options(3e-4, "Adam learning rate", weight_decay=0.0)
    assert (lr.name, lr.default, decay.name, decay.default, decay.minimum) == ("lr", 3e-4, "weight_decay", 0.0, 0.0)
    hidden, features = autoencoder_options((500, 500, 2000), 512, "latent size")
    assert (hidden.type, hidden.default, features.name, features.minimum) == ("list[int]", (500, 500, 2000),
                                                                                "feature_dim", 1)
    reading = choice("scope", ("batch", "full"), "where prototypes come from")
    assert reading.default == "batch" and reading.choices == ("batch", "full") and not reading.ablation
    assert choice("scope", ("batch", "full"), "h", default="full", ablation=True).default == "full"
    with pytest.raises(MvbenchError, match="choose one of batch, full"):
        choice("scope", ("batch", "full"), "h", default="neither")
