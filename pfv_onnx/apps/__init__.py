"""The applications on top of ``PFV``, one module per command; each has ``run(args, options)`` for the
command line.

``explain``  PFV of files and folders as pictures, a summary and an HTML report
``fit``      a basis fitted on a dataset, for colours that mean the same in every batch
``export``   a tapped copy of a model that outputs A^b and F_N on any ONNX runtime
``demo``     the paper's figures 2-4 (and fitted colours) on the bundled model and photos
``debug``    why an image was misclassified: its components against examples of both classes (paper 5.1)
``survey``   which classes a model's features separate, for transfer learning (paper 5.2)
``sanity``   the model-parameter randomisation test (Adebayo et al.; paper figure 3)
``evaluate`` how well the maps point at objects and how faithful they are, against baselines and controls
"""
