"""A tiny Llama-architecture model and byte-level BPE tokenizer, made locally from text.

For tests and smoke runs where no model can be downloaded: `ccd train --base-model PATH` takes
the folder it writes like any Hugging Face model. Heavy imports stay inside the function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                  "<|eom_id|>", "<|python_tag|>", "<|pad|>"]


def chat_template() -> str:
    from cc_capture.datasets.templates import TRAINING_TEMPLATE

    return TRAINING_TEMPLATE.read_text()


def make_tiny_model(out: Path, texts: Iterable[str], vocab_size: int = 512, hidden: int = 64, layers: int = 2,
                    seed: int = 0) -> Path:
    """Train a byte-level BPE tokenizer on `texts`, build a small random Llama, save both to `out`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>", pad_token="<|pad|>")
    tokenizer.chat_template = chat_template()
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                         tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def pretrain(model_dir: Path, texts: Iterable[str], steps: int = 200, learning_rate: float = 3e-3,
             batch_size: int = 8, block: int = 128, seed: int = 0) -> Path:
    """A short full fine-tune of the tiny model on plain text (next-token loss over blocks of the
    texts joined by blank lines; no special token, so no turn structure is learnt), saved in place: a stand-in for pretraining, so that a LoRA fine-tune has
    words and JSON shapes to build on. Heavy imports stay inside."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    ids = tok("\n\n".join(texts), add_special_tokens=False)["input_ids"]
    blocks = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    # The text holds no special token, and next-token loss would push their output rows down
    # everywhere; a LoRA fine-tune (trl trains no adapter on lm_head) could not lift them again.
    # Their rows stay as initialised.
    keep = torch.ones(model.lm_head.weight.shape[0], 1)
    keep[tok.convert_tokens_to_ids(SPECIAL_TOKENS)] = 0
    model.lm_head.weight.register_hook(lambda grad: grad * keep)
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        batch = blocks[torch.randint(len(blocks), (batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    model.save_pretrained(model_dir)
    return model_dir
