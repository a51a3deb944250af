"""Several methods in one Distiller: names, terms, gradient paths, one
teacher and one student forward per step, per-method factors, old
checkpoints."""
import pytest
import torch
from mmdet.registry import MODELS

from sea_kd.models.distillers import Distiller

from ...conftest import make_batch

FI = dict(type='FeatureImitation')
ADL = dict(type='ADL', loss_adl=dict(type='ADLoss', base='bce'))


def distiller(pair, methods, type='Distiller', **kwargs):
    s_cfg, t_cfg, ckpt, _ = pair
    model = MODELS.build(dict(type=type, student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt, methods=methods, **kwargs)
                         if type == 'Distiller' else
                         dict(type=type, student=s_cfg, teacher=t_cfg,
                              teacher_ckpt=ckpt, **kwargs))
    model.init_weights()
    return model


def count_calls(module):
    """Count the calls of a module (a forward pre-hook)."""
    calls = []
    module.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def grads(module):
    return {n: p.grad for n, p in module.named_parameters()
            if p.grad is not None and p.grad.abs().sum() > 0}


def test_two_methods_give_both_terms_with_their_own_gradient_paths(pair):
    model = distiller(pair, [FI, ADL])
    assert model.method_names == ('fi', 'adl')
    assert model.teacher_parts == ('neck', 'dense_head')
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert {'loss_fi_feat', 'loss_adl_cls', 'loss_cls'} <= set(losses)

    losses['loss_fi_feat'].backward(retain_graph=True)
    fi = grads(model)
    assert any(n.startswith('methods.fi.adapters') for n in fi)
    assert any(n.startswith('student.neck') for n in fi)
    assert not any(n.startswith('student.bbox_head') for n in fi)
    model.zero_grad(set_to_none=True)

    losses['loss_adl_cls'].backward()
    adl = grads(model)
    assert any(n.startswith('student.bbox_head.retina_cls') for n in adl)
    assert not any(n.startswith('methods.fi') for n in adl)
    assert not any(n.startswith('student.bbox_head.retina_reg') for n in adl)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_each_term_equals_the_one_method_distillers(pair):
    both = distiller(pair, [FI, ADL])
    inputs, samples = make_batch(both)
    losses = both.loss(inputs, samples)
    for kind, method, term in [('FeatureImitationDistiller', 'fi', 'feat'),
                               ('ADLDistiller', 'adl', 'cls')]:
        opts = dict(FI if method == 'fi' else ADL)
        opts.pop('type')
        alone = distiller(pair, None, type=kind, **opts)
        state = {k.replace(f'methods.{method}.', ''): v
                 for k, v in both.state_dict().items()
                 if k.startswith(('student.', f'methods.{method}.'))}
        alone.load_state_dict(state)  # old-style keys: see below
        expected = alone.loss(inputs, samples)[f'loss_{method}_{term}']
        assert losses[f'loss_{method}_{term}'].item() == pytest.approx(
            expected.item(), rel=1e-5)


def test_teacher_and_student_run_once_for_all_methods(pair):
    model = distiller(pair, [FI, ADL, dict(type='FeatureImitation')])
    counts = {
        'teacher backbone': count_calls(model.teacher.backbone),
        'teacher head': count_calls(model.teacher.bbox_head),
        'student backbone': count_calls(model.student.backbone),
        'student head': count_calls(model.student.bbox_head),
    }
    inputs, samples = make_batch(model)
    losses = model.loss(inputs, samples)
    assert {'loss_fi_feat', 'loss_fi2_feat', 'loss_adl_cls'} <= set(losses)
    assert {k: len(v) for k, v in counts.items()} == dict.fromkeys(counts, 1)


def test_teacher_head_runs_only_when_a_method_reads_it(pair):
    model = distiller(pair, [FI])
    assert model.teacher_parts == ('neck', )
    calls = count_calls(model.teacher.bbox_head)
    model.loss(*make_batch(model))
    assert calls == []


def test_same_kind_twice_gets_distinct_names(pair):
    model = distiller(pair, [dict(type='FeatureImitation', levels=[0]),
                             dict(type='FeatureImitation', levels=[1]),
                             dict(type='FeatureImitation', name='last',
                                  levels=[4])])
    assert model.method_names == ('fi', 'fi2', 'last')
    losses = model.loss(*make_batch(model))
    values = [losses[f'loss_{n}_feat'].item() for n in model.method_names]
    assert len(set(values)) == 3  # three levels, three different terms


@pytest.mark.parametrize('name', ['FI', 'fi_feat', '2fi', '', 7])
def test_bad_method_name_is_refused(pair, name):
    with pytest.raises(ValueError, match='lower-case letters and digits'):
        distiller(pair, [dict(type='FeatureImitation', name=name)])


def test_methods_must_be_distillation_methods(pair):
    with pytest.raises(TypeError, match='DistillMethod subclasses'):
        distiller(pair, [dict(type='FocalLoss')])
    with pytest.raises(KeyError, match='Unknown distillation method'):
        distiller(pair, [dict(type='NoSuchMethod')])
    with pytest.raises(ValueError, match='has no `methods`'):
        distiller(pair, [])


def test_per_method_factors(pair):
    model = distiller(pair, [FI, ADL])
    inputs, samples = make_batch(model)
    torch.manual_seed(1)
    full = model.loss(inputs, samples)
    model.set_distill_loss_scale(1.0, {'fi': 0.0, 'adl': 0.5})
    torch.manual_seed(1)
    scaled = model.loss(inputs, samples)
    assert scaled['loss_fi_feat'].item() == 0.0
    assert scaled['loss_adl_cls'].item() == pytest.approx(
        0.5 * full['loss_adl_cls'].item(), rel=1e-5)
    assert model.distill_term_factor('loss_adl_cls') == 0.5
    assert model.distill_term_factor('fi_feat') == 0.0
    # a bare term name shared by two methods is ambiguous
    two = distiller(pair, [FI, FI])
    two.loss(inputs, samples)
    two.set_distill_loss_scale(1.0, {'feat': 0.5})
    with pytest.raises(KeyError, match='ambiguous'):
        two.loss(inputs, samples)
    two.set_distill_loss_scale(1.0, {'adl': 0.5})
    with pytest.raises(KeyError, match='fix the keys'):
        two.loss(inputs, samples)


def test_per_method_weight_schedule_in_the_hook(pair):
    from sea_kd.engine.hooks import DistillLossWeightHook
    model = distiller(pair, [FI, ADL])
    hook = DistillLossWeightHook(
        by_epoch=False, term_schedules=dict(
            fi=dict(policy='linear', warmup=0, begin=0, end=10,
                    end_factor=0.0)))
    factor, terms = hook.factors(5, 10)
    model.set_distill_loss_scale(factor, terms)
    model.loss(*make_batch(model))
    assert model.distill_term_factor('loss_fi_feat') == pytest.approx(0.5)
    assert model.distill_term_factor('loss_adl_cls') == 1.0


def test_checkpoint_of_a_one_method_distiller_of_0_1_loads(pair):
    model = distiller(pair, None, type='FeatureImitationDistiller')
    old = {k.replace('methods.fi.', ''): v.clone() + 1
           for k, v in model.state_dict().items()}
    assert any(k.startswith('adapters.') for k in old)
    model.load_state_dict(old)
    new = model.state_dict()
    for key, value in old.items():
        moved = key if key.startswith('student.') else f'methods.fi.{key}'
        assert torch.equal(new[moved], value), key


def test_old_keys_are_not_guessed_for_several_methods(pair):
    model = distiller(pair, [FI, dict(type='FeatureImitation')])
    old = {k.replace('methods.fi.', ''): v
           for k, v in model.state_dict().items()}
    with pytest.raises(RuntimeError, match='adapters'):
        model.load_state_dict(old)


def test_distiller_is_registered_and_the_aliases_are_distillers():
    for name in ['Distiller', 'FeatureImitationDistiller', 'ADLDistiller',
                 'SEADistiller', 'TBDDistiller', 'GDetKDDistiller']:
        assert issubclass(MODELS.get(name), Distiller)


def test_nonfinite_guard_names_the_method_term(pair, monkeypatch):
    from sea_kd.models.distillers import NonFiniteDistillLossError
    model = distiller(pair, [FI, ADL])
    adl = model.methods['adl']
    original = adl.forward
    monkeypatch.setattr(adl, 'forward', lambda record: {
        k: v * float('nan') for k, v in original(record).items()})
    inputs, samples = make_batch(model)
    with pytest.raises(NonFiniteDistillLossError) as err:
        model.loss(inputs, samples)
    assert 'loss_adl_cls' in str(err.value)
    assert 'loss_fi_feat' not in str(err.value).split('\n')[0]


def test_init_weights_reaches_the_methods_modules(pair):
    model = distiller(pair, [dict(
        type='FeatureImitation',
        init_cfg=dict(type='Constant', val=0.5, bias=0.25, layer='Conv2d'))])
    conv = model.methods['fi'].adapters[0].conv
    assert torch.all(conv.weight == 0.5) and torch.all(conv.bias == 0.25)


def test_an_alias_logs_its_deprecation_with_the_new_form(pair):
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    seen = []

    class _Keep:
        level = 0

        def handle(self, record):
            seen.append((record.levelname, record.getMessage()))

    handler = _Keep()
    logger.handlers.append(handler)
    try:
        model = distiller(pair, None, type='ADLDistiller',
                          loss_adl=dict(type='ADLoss', base='bce'),
                          balance=dict(type='GradientShareBalance'))
    finally:
        logger.handlers.remove(handler)
    warnings = [m for level, m in seen if level == 'WARNING'
                and 'ADLDistiller is deprecated' in m]
    assert len(warnings) == 1, seen
    assert ("dict(type='Distiller', student=..., teacher=..., "
            "teacher_ckpt=..., methods=[dict(type='ADL', loss_adl=...)])"
            in warnings[0])
    # the distiller's own options are not listed as method options
    assert 'balance=...' not in warnings[0]
    assert list(model.methods) == ['adl'] and model.balance is not None
    # the plain Distiller says nothing of the kind
    seen.clear()
    logger.handlers.append(handler)
    try:
        distiller(pair, [ADL])
    finally:
        logger.handlers.remove(handler)
    assert not [m for _, m in seen if 'deprecated' in m]


def test_a_method_option_on_the_distiller_is_refused_with_the_fix(pair):
    # what `--cfg-options model.loss_feat.loss_weight=3` gives a Distiller
    with pytest.raises(TypeError) as err:
        distiller(pair, [FI], loss_feat=dict(loss_weight=3.0))
    message = str(err.value)
    assert 'Distiller does not take loss_feat' in message
    assert 'methods=[dict(type=..., loss_feat=...)]' in message
    assert '--cfg-options model.methods.0.loss_feat=...' in message
