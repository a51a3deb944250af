"""Export the student of a distiller checkpoint as a plain mmdet checkpoint.

    python tools/export_student.py CONFIG CHECKPOINT OUT_FILE

The exported file loads into the student's own config (e.g. with
``python tools/test.py STUDENT_CONFIG OUT_FILE`` or mmdet's tools) with no
missing or unexpected keys; that is checked before the file is written.
"""
import argparse

from sea_kd.utils import export_student


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='the distiller config')
    parser.add_argument('checkpoint', help='a distiller checkpoint')
    parser.add_argument('out_file', help='where to write the student')
    parser.add_argument(
        '--no-verify',
        action='store_true',
        help='skip building the student to check the keys')
    args = parser.parse_args()
    info = export_student(args.checkpoint, args.out_file,
                          None if args.no_verify else args.config)
    print(f'wrote {args.out_file}: {info["num_tensors"]} student tensors; '
          f'left out: {", ".join(info["dropped"]) or "nothing"}; '
          f'verified against the student config: {info["verified"]}')


if __name__ == '__main__':
    main()
