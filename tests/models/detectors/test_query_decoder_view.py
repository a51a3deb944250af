"""Decoder views: a DETR-family detector's decoder and head run again on
given queries reproduce its own outputs on its own queries, and see none
of its other queries."""
import pytest
import torch

from sea_kd.models.capture import MethodTap, teacher_query_forward
from sea_kd.models.detectors import DecoderQueries, query_decoder_view

from ...conftest import build, make_batch, tiny_detector_cfg


def trained_looking(kind):
    """A tiny detector in eval mode whose box branches predict offsets
    (mmdet initialises their last layers to zero)."""
    torch.manual_seed(0)
    model = build(tiny_detector_cfg(kind))
    model.eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.02 * torch.randn_like(p))
    return model


#: the families with a view
VIEWED = ['dino', 'dab_detr', 'deformable_detr_two_stage']


@pytest.mark.parametrize('kind', VIEWED)
def test_its_own_queries_give_its_own_outputs(kind):
    model = trained_looking(kind)
    inputs, samples = make_batch(model)
    outputs = teacher_query_forward(model, model.extract_feat(inputs),
                                    samples)
    view = query_decoder_view(model)
    queries = view.matching_queries(outputs.decoder_inputs)
    assert queries.boxes.shape == (2, 30, 4)
    with torch.no_grad():
        cls, boxes = view.decode(outputs.decoder_inputs, queries)
    torch.testing.assert_close(cls, outputs.cls_scores)
    torch.testing.assert_close(boxes, outputs.bbox_preds)


#: the keys of each family's decoder call that hold its own queries
OWN_QUERIES = {'dino': ('query', 'reference_points'),
               'dab_detr': ('query', 'query_pos'),
               'deformable_detr_two_stage': ('query', 'query_pos',
                                             'reference_points')}


@pytest.mark.parametrize('kind', VIEWED)
def test_given_queries_are_decoded_alone(kind):
    """The given queries' outputs do not depend on the detector's own
    queries of the step (no self-attention across): replacing those in
    the recorded call changes nothing; decoding the given queries next to
    them does."""
    model = trained_looking(kind)
    inputs, samples = make_batch(model)
    outputs = teacher_query_forward(model, model.extract_feat(inputs),
                                    samples)
    view = query_decoder_view(model)
    recorded = outputs.decoder_inputs
    torch.manual_seed(1)
    given = DecoderQueries(torch.zeros(2, 5, view.embed_dims),
                           torch.rand(2, 5, 4) * 0.5 + 0.2)
    other = dict(recorded)
    for key in OWN_QUERIES[kind]:
        other[key] = torch.randn_like(recorded[key])
    own = view.matching_queries(recorded)
    with torch.no_grad():
        alone = view.decode(recorded, given)
        with_other_own = view.decode(other, given)
        together = view.decode(
            recorded,
            DecoderQueries(torch.cat([given.content, own.content], 1),
                           torch.cat([given.boxes, own.boxes], 1)))[0]
    assert alone[0].shape == (2, 2, 5, 3)
    torch.testing.assert_close(with_other_own[0], alone[0], rtol=0, atol=0)
    torch.testing.assert_close(with_other_own[1], alone[1], rtol=0, atol=0)
    # self-attention mixes the queries of one call
    assert not torch.allclose(alone[0], together[:, :, :5])


@pytest.mark.parametrize('kind', VIEWED)
def test_boxes_are_normalised_in_both_directions(kind):
    """Given boxes in [0, 1] are the decoder's first references as they
    are; DAB-DETR's own anchors are its query embedding's sigmoid."""
    model = trained_looking(kind)
    inputs, samples = make_batch(model)
    outputs = teacher_query_forward(model, model.extract_feat(inputs),
                                    samples)
    view = query_decoder_view(model)
    boxes = torch.rand(2, 5, 4) * 0.5 + 0.2
    given = DecoderQueries(torch.zeros(2, 5, view.embed_dims), boxes)
    with torch.no_grad():
        decoded = model.forward_decoder(
            **view.decoder_inputs(outputs.decoder_inputs, given))
    torch.testing.assert_close(decoded['references'][0], boxes)
    if kind == 'dab_detr':
        own = view.matching_queries(outputs.decoder_inputs)
        torch.testing.assert_close(
            own.boxes, model.query_embedding.weight.sigmoid().expand(
                2, -1, -1))


def test_dino_matching_queries_are_read_in_eval_mode_only():
    torch.manual_seed(0)
    model = build(tiny_detector_cfg('dino'))
    model.train()
    inputs, samples = make_batch(model)
    with MethodTap(model, 'forward_decoder') as tap:
        model.loss(inputs, samples)
    with pytest.raises(RuntimeError, match='denoising'):
        query_decoder_view(model).matching_queries(tap.first.kwargs)


@pytest.mark.parametrize('kind', ['detr', 'retinanet'])
def test_families_without_a_view_have_none(kind):
    assert query_decoder_view(build(tiny_detector_cfg(kind))) is None


def test_single_stage_deformable_detr_is_refused_with_the_fix():
    with pytest.raises(TypeError, match='as_two_stage=True'):
        query_decoder_view(build(tiny_detector_cfg('deformable_detr')))


def test_deformable_detr_queries_are_its_proposals_map_of_the_box():
    """The queries the view gives a box are those the two-stage detector
    gives a proposal of that box (both halves of its map); the given
    content is not read."""
    model = trained_looking('deformable_detr_two_stage')
    inputs, samples = make_batch(model)
    outputs = teacher_query_forward(model, model.extract_feat(inputs),
                                    samples)
    recorded = outputs.decoder_inputs
    view = query_decoder_view(model)
    own = view.matching_queries(recorded)
    other_content = DecoderQueries(torch.randn_like(own.content), own.boxes)
    with torch.no_grad():
        given = view.decoder_inputs(recorded, own)
        other = view.decoder_inputs(recorded, other_content)
    assert not torch.allclose(recorded['query_pos'][:, :1],
                              recorded['query_pos'][:, 1:2])
    for key in ('query', 'query_pos'):
        torch.testing.assert_close(given[key], recorded[key])
        torch.testing.assert_close(other[key], recorded[key])
    assert not view.uses_content


def test_decode_runs_in_the_decoders_precision():
    """Memory from an autocast region (bf16) is decoded by a float32
    decoder in float32."""
    model = trained_looking('dino')
    inputs, samples = make_batch(model)
    outputs = teacher_query_forward(model, model.extract_feat(inputs),
                                    samples)
    view = query_decoder_view(model)
    half = {k: v.bfloat16() if torch.is_tensor(v) and v.is_floating_point()
            else v for k, v in outputs.decoder_inputs.items()}
    queries = view.matching_queries(outputs.decoder_inputs)
    with torch.no_grad():
        cls, boxes = view.decode(half, queries)
    assert cls.dtype == boxes.dtype == torch.float32
    torch.testing.assert_close(cls, outputs.cls_scores, atol=0.1, rtol=0.1)
