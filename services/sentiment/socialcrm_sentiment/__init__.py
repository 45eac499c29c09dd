"""Sentiment: enriches interactions with language, sentiment, intent, urgency, reach and virality."""
