"""Pure domain: exchange rules, fees, cycle states, guards, indicators and decisions.

Nothing here imports boto3, pynamodb, binance, openai or reads ``os.environ``.
"""
