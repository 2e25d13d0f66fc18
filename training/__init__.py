"""Training: build, evaluate honestly, gate and publish the models (`build`, run by `build_model.py`) and draw
their pictures (`plots`). A top layer beside `web` and `batch`: it imports `kinds`, `serving` and `store`.
"""
