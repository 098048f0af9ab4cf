# A PyTorch script with only model_fn: the container's defaults make a tensor, call the model
# under torch.no_grad() and encode the answer.
import os

import torch


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.layer(x)


def model_fn(model_dir):
    model = Linear()
    model.load_state_dict(torch.load(os.path.join(model_dir, "model.pth")))
    return model
