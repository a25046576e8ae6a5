"""A local SageMaker endpoint for the creative-scoring models."""
