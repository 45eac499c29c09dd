"""What a webhook call must prove, and the bounds every input stays within (pure)."""
