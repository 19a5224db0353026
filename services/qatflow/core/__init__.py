"""The shared core: settings, the model-artifact contract, tokenization and post-processing.

Needs only numpy, pydantic, PyYAML and a Hugging Face tokenizer, never torch.
"""
