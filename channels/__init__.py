"""Messaging channels (Telegram, WeChat), the Rasa client they share, and notifications."""
