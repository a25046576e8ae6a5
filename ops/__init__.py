"""Operations on deployed stacks that CloudFormation has no resource for (``python -m ops``)."""
