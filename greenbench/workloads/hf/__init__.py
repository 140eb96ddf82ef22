"""Hugging Face workloads: text classification, vision, causal language models."""
