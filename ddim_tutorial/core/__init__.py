"""The DDIM a student reads: the schedule, the U-Net, the model, the samplers.

``schedule`` -> ``network`` -> ``sampling`` -> ``model``; ``predictions`` is the marked extension
(what else the network can predict, class labels and classifier-free guidance).
"""
