"""Sentiment: adds language, sentiment, intent, urgency, reach and virality to interactions."""
