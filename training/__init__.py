"""Trains the creative-scoring models and packages them as SageMaker model archives.

Training imports the handler modules of ``inference/`` as the serving container does, as top-level modules
(``import creative_scorers``); the project's installation puts that folder on the import path (pyproject.toml).
"""
