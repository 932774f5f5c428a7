"""Weights at a trained model's scale, for the scripts that make random
transformers models (make-fixtures.py, random-campaign.py)."""
import torch


def randomize(model):
    """transformers' initialization (std 0.02, norms 1) leaves a model this
    small nearly constant: attention close to uniform, whatever RoPE does,
    and logits within 0.1 of each other. Give every matrix the scale a
    trained one has (std 1/sqrt(fan-in), embeddings 1, queries and keys
    1.5/sqrt(fan-in) for attention that picks positions), norms random
    weights and routers' biases values that change which experts they
    choose, attention sinks a share of their softmax, so that a wrong
    rotation, head mapping, norm or routing shows in
    the logits."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            # ERNIE 4.5 MoE's bias is a parameter without a gradient.
            if name.endswith("e_score_correction_bias"):
                parameter.uniform_(-0.3, 0.3)
            # Attention sinks (GraniteSWA's) as large as the scores, so
            # that each takes a share of its softmax that shows.
            elif name.endswith(".sinks"):
                parameter.uniform_(-1.0, 2.0)
            elif "norm" in name:
                parameter.uniform_(0.5, 1.5)
            elif "embed_tokens" in name:
                parameter.normal_(0.0, 1.0)
            else:
                gain = 1.5 if "q_proj" in name or "k_proj" in name else 1.0
                parameter.normal_(0.0, gain / parameter.shape[-1] ** 0.5)
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.uniform_(-0.3, 0.3)
