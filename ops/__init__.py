"""Operations on deployed stacks, or on the local endpoint, that CloudFormation has no resource for: model versions
(``creative-scoring models``), smoke tests (``creative-scoring smoke``), batch transform jobs
(``creative-scoring sagemaker transform``), and the deploy's carry-over of published versions."""
