"""The model kinds: what a built model folder is once loaded, and how it scores texts (`text`: TF-IDF and naive
Bayes over text, `SentimentModel`). No HTTP here; a kind reads its folder through `store` and may use `serving`.
"""
