"""GAN quality metrics, one module each (features -> statistics -> metric), as in torch-fidelity.

=================  ===========================================================  ====================
module             metric                                                       result
=================  ===========================================================  ====================
``c2st``           classifier two-sample test, exact binomial p-value           ``C2STResult``
``frechet``        Fréchet distance in classifier features, real-vs-real floor  ``FrechetResult``
``kid``            KID over disjoint subsets, t interval and t-test of KID = 0  ``KIDResult``
``class_balance``  two-sample chi^2 of predicted classes (mode collapse)         ``ClassBalanceResult``
``memorisation``   Mann-Whitney test of distances to the training digits        ``MemorisationResult``
``diversity``      permutation test of within-set nearest-neighbour distances   ``DiversityResult``
=================  ===========================================================  ====================

``base`` holds the shared inputs and result protocols, ``family`` Holm's procedure, ``registry``
the list ``evaluate_generator`` (``genbench.gan.quality``) runs; ``discriminator`` reports the GAN's
own D. Import the module you need: ``from genbench.gan.metrics.kid import kernel_inception_distance``.
"""
