"""Run the sentiment service: ``socialcrm-sentiment --help`` lists its settings."""

from socialcrm.runtime import run_service
from socialcrm_sentiment.app import build_app
from socialcrm_sentiment.settings import SentimentSettings


def main() -> None:
    run_service(
        SentimentSettings,
        build_app,
        "Sentiment: adds language, sentiment, intent, urgency and reach to every interaction.",
    )


if __name__ == "__main__":
    main()
