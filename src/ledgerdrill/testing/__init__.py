"""Fakes and test servers for the harness's own tests: a fake Kubernetes API server
(``fakeapi``) and a fake Azure Resource Manager (``fake_arm``), each modelled on upstream
behaviour cited next to the code. No runtime module imports this package
(``tests/unit/test_layering.py``); tests put a fake in place by injection."""
