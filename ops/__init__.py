"""Operations on deployed stacks that CloudFormation has no resource for (``creative-scoring sagemaker``)."""
