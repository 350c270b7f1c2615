"""The learned ranker: a LightGBM LambdaRank model that orders the union of the candidate sources
(`recommendations.sources`) by features of the item, of the user's recent items and of each source."""
