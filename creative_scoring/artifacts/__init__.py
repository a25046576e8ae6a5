"""Model artifacts: the archive format SageMaker extracts, and the handler chain that runs an archive's code."""
