"""Supervised fine-tuning on chat data: conversations rendered with the model's chat template, the loss on
the assistant's tokens only, examples packed into blocks that keep documents apart.

The pure parts live here (core): `tokens` (a conversation as ids and labels), `packing` (blocks, padded
batches, the loss), `data` (dataset files as conversations, checked row by row), `config` (the `rlsys sft`
job schema). The learner pool (`actors.sft`) runs the same loss under DeepSpeed; `rlsys.sft_job` is the
driver.
"""
