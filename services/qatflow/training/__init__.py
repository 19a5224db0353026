"""The training job: fine-tune, quantize with NNCF (QAT), export, gate on accuracy, publish."""
