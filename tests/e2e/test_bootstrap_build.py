"""Build the embedded model from scratch into a temporary cache and use it like any HF chat model."""

import json

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]


def test_build_loads_and_answers_in_chat_format(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlsys.bootstrap import ensure_embedded_model
    from rlsys.tasks.arithmetic import chat_messages, problems

    path = ensure_embedded_model(cache_dir=tmp_path, seed=0, progress=False)
    assert ensure_embedded_model(cache_dir=tmp_path, seed=0, progress=False) == path, "second call reuses"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp-")], "staging folder removed"
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer.json"):
        assert (path / name).is_file(), name

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert tok.eos_token_id == im_end
    assert json.loads((path / "generation_config.json").read_text())["eos_token_id"] == im_end
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 2e6

    answered = 0
    for problem in problems("eval", 8, seed=0):
        prompt = tok.apply_chat_template(
            chat_messages(problem), add_generation_prompt=True, return_tensors="pt"
        )
        with torch.no_grad():
            out = model.generate(**prompt, max_new_tokens=80, do_sample=False)
        reply = out[0, prompt["input_ids"].shape[1] :].tolist()
        assert reply[-1] == im_end, tok.decode(reply)
        answered += "####" in tok.decode(reply)
    assert answered == 8
