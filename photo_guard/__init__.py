"""photo_guard: DP2-VL protection of private photo sets against vision-language model fine-tuning."""

__version__ = "0.1.0"
