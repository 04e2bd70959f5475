"""The reward-model job's config (`rlsys train-rm`): its learner section is a pool of DeepSpeed ranks like
the RL and SFT jobs'; keys that moved there from `train` say where they went; every rank has rankings."""

from pathlib import Path

import pytest

from rlsys.errors import ConfigError
from rlsys.rlhf.config import load_rm_config

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def test_quickstart_sets_the_learner_pool():
    config = load_rm_config(JOBS / "rm_quickstart.yaml")
    assert config.pools() == {"learner": config.learner}
    assert config.learner.replicas == 1 and config.learner.lr == 3e-4 and config.learner.warmup_steps == 10
    assert config.learner.micro_batch_size == config.train.rankings_per_batch  # one forward a step, as before
    assert config.data.generate.torch_threads == 1
    assert config.flat()["learner.zero_stage"] == 2


def test_learner_keys_validate_like_the_other_pools():
    config = load_rm_config(None, ["learner.replicas=2", "learner.zero_stage=3", "learner.num_cpus=0.5"])
    assert (config.learner.replicas, config.learner.zero_stage, config.learner.num_cpus) == (2, 3, 0.5)
    with pytest.raises(ConfigError) as caught:
        load_rm_config(None, ["learner.micro_batch_size=0", "learner.lora.rank=8", "learner.zero_stage=4"])
    message = str(caught.value)
    assert "learner.micro_batch_size: Input should be greater than or equal to 1" in message
    assert "learner.lora: unknown key" in message  # the reward model trains every weight
    assert "learner.zero_stage: Input should be 0, 1, 2 or 3" in message


def test_more_ranks_than_rankings_per_step_names_the_keys():
    with pytest.raises(ConfigError) as caught:
        load_rm_config(None, ["learner.replicas=4", "train.rankings_per_batch=3"])
    assert "learner.replicas: more ranks than train.rankings_per_batch (3): lower learner.replicas" in str(
        caught.value
    )


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.lr=0.01", "train.lr: moved out of train: set learner.lr"),
        ("train.zero_stage=3", "train.zero_stage: moved out of train: set learner.zero_stage"),
        ("train.betas=[0.9, 0.99]", "train.betas: moved out of train: set learner.betas"),
        ("train.torch_threads=1", "set learner.torch_threads (the ranks) or data.generate.torch_threads"),
    ],
)
def test_keys_moved_out_of_train_name_their_new_place(override, message):
    with pytest.raises(ConfigError, match="invalid reward-model config") as caught:
        load_rm_config(None, [override])
    assert message in str(caught.value)
