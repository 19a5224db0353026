"""qatflow: Quantization Aware Training of Hugging Face NLP models, served as INT8 on Intel CPUs."""

__version__ = "0.1.0"
